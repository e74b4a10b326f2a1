{#- Client time dated before its contract's start or after its end (the current, i.e. final
    amended, end date): it has no contract to be billed under. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

contracts as (
    select * from {{ ref('int_contracts') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

outside as (
    select
        entries.*,
        contracts.contract_number,
        contracts.start_date as contract_start_date,
        contracts.end_date as contract_end_date
    from entries
    inner join contracts on entries.contract_id = contracts.contract_id
    cross join as_of
    where
        not entries.is_deleted
        and entries.created_at <= as_of.as_of_at
        and not entries.is_internal_project
        and (entries.spent_date < contracts.start_date or entries.spent_date > contracts.end_date)
),

final as (
    select
        {{ time_entry_exception(
            'TIME_OUTSIDE_CONTRACT',
            "'worked ' || cast(outside.spent_date as " ~ dbt.type_string() ~ ") || ', ' || case when outside.spent_date < outside.contract_start_date"
                ~ " then 'before' else 'after' end || ' contract ' || outside.contract_number || ' ('"
                ~ " || cast(outside.contract_start_date as " ~ dbt.type_string() ~ ") || ' to ' || coalesce(cast(outside.contract_end_date as " ~ dbt.type_string() ~ "), 'open') || ')'",
            exception_details([
                ['contract_number', 'outside.contract_number'],
                ['contract_start_date', 'outside.contract_start_date'],
                ['contract_end_date', 'outside.contract_end_date'],
                ['spent_date', 'outside.spent_date'],
            ]),
            alias='outside'
        ) }}
    from outside
)

select * from final
