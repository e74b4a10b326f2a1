{#- Billable client time of a person HR knows, whose role has no rate-card version effective on
    the day worked (for the project's contract): it cannot be priced. Time of unknown people or
    unknown projects has its own exception and is not reported twice. The rate lookup is
    int_time_entries_rated's (matching_rate_count = 0).
    It holds the entry back only where the rate makes the money sent to the ERP: time and
    materials (or a project whose billing method is unknown). On fixed-fee and retainer
    projects the bill does not use it (only realisation's standard value does), so the row is
    reported but does not block (is_record_blocking false). -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

rated as (
    select * from {{ ref('int_time_entries_rated') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

unpriced as (
    select
        entries.*,
        rated.rate_card_id,
        rated.rate_card_count
    from entries
    inner join rated on entries.time_entry_id = rated.time_entry_id
    cross join as_of
    where
        not entries.is_deleted
        and entries.created_at <= as_of.as_of_at
        and entries.is_billable
        and entries.is_known_project
        and not entries.is_internal_project
        and entries.is_known_employee
        and rated.matching_rate_count = 0
),

final as (
    select
        {{ time_entry_exception(
            'TIME_NO_RATE',
            "'no rate for role ' || coalesce(unpriced.rate_role, '(none)') || ' on ' || cast(unpriced.spent_date as " ~ dbt.type_string() ~ ")"
                ~ " || coalesce(' on rate card ' || unpriced.rate_card_id, ' (the contract has no rate card)')",
            exception_details([
                ['rate_card_id', 'unpriced.rate_card_id'],
                ['rate_card_count', 'unpriced.rate_card_count'],
                ['role', 'unpriced.rate_role'],
                ['spent_date', 'unpriced.spent_date'],
                ['hours', 'unpriced.hours'],
                ['billing_method', 'unpriced.billing_method'],
            ]),
            alias='unpriced',
            is_record_blocking="coalesce(unpriced.billing_method, 'unknown')"
                ~ " not in ('fixed_fee_milestones', 'fixed_fee_percent_complete', 'retainer')"
        ) }}
    from unpriced
)

select * from final
