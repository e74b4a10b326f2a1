{#- Time approved after the ERP closed the month of its day (realm of the entry's legal entity):
    it can no longer be billed into that period. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

closes as (
    select * from {{ ref('int_period_closes') }}
),

final as (
    select
        {{ time_entry_exception(
            'TIME_CLOSED_PERIOD',
            "'approved ' || cast(entries.approved_at as varchar) || ', after the ' || "
                ~ "left(cast(closes.month_start_date as varchar), 7) || ' books closed at ' || cast(closes.closed_at as varchar)",
            "'{\"approved_at\": \"' || cast(entries.approved_at as varchar) || '\", \"closed_at\": \"' || "
                ~ "cast(closes.closed_at as varchar) || '\", \"closed_at_source\": \"' || closes.closed_at_source || '\"}'"
        ) }}
    from entries
    inner join closes
        on entries.realm_id = closes.realm_id
        and entries.spent_date between closes.month_start_date and closes.month_end_date
    where entries.approved_at > closes.closed_at
)

select * from final
