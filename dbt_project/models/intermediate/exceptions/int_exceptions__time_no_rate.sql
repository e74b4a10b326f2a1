{#- Billable client time of a known employee that no rate-card version prices on the day worked. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

rated as (
    select * from {{ ref('int_time_entries_rated') }}
),

final as (
    select
        {{ time_entry_exception(
            'TIME_NO_RATE',
            "'no rate on ' || coalesce('rate card ' || rated.rate_card_id, 'any rate card') || ' for role '"
                ~ " || coalesce(entries.rate_role, '?') || ' on ' || cast(entries.spent_date as varchar)",
            "'{\"rate_card_id\": \"' || coalesce(rated.rate_card_id, '') || '\", \"role\": \"' || "
                ~ "coalesce(entries.rate_role, '') || '\"}'"
        ) }}
    from entries
    inner join rated on entries.time_entry_id = rated.time_entry_id
    where
        entries.is_billable
        and entries.is_known_project
        and not entries.is_internal_project
        and entries.is_known_employee
        and rated.matching_rate_count = 0
)

select * from final
