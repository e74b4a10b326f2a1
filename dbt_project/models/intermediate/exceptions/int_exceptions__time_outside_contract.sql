with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

contracts as (
    select * from {{ ref('dim_contracts') }}
),

final as (
    select
        {{ time_entry_exception(
            'TIME_OUTSIDE_CONTRACT',
            "'worked ' || cast(entries.spent_date as varchar) || ', outside contract ' || contracts.contract_number"
                ~ " || ' (' || cast(contracts.start_date as varchar) || ' to ' || cast(contracts.end_date as varchar) || ')'",
            "'{\"contract_number\": \"' || contracts.contract_number || '\", \"start_date\": \"' || "
                ~ "cast(contracts.start_date as varchar) || '\", \"end_date\": \"' || cast(contracts.end_date as varchar) || '\"}'"
        ) }}
    from entries
    inner join contracts on entries.contract_id = contracts.contract_id
    where
        not entries.is_internal_project
        and (entries.spent_date < contracts.start_date or entries.spent_date > contracts.end_date)
)

select * from final
