{#- Approved billable time-and-materials time of a month whose books are closed that never
    reached the ERP: the hours the time tool approved and the hours the ERP billed differ by it
    (revenue leakage). One exception per entry, so the owner sees exactly which time is missing. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

erp as (
    select * from {{ ref('int_time_entries_erp') }}
),

closes as (
    select * from {{ ref('int_period_closes') }}
),

final as (
    select
        {{ time_entry_exception(
            'RECON_MISMATCH',
            "'approved billable ' || entries.hours || ' h of ' || cast(entries.spent_date as varchar)"
                ~ " || ' never reached the ERP; ' || left(cast(closes.month_start_date as varchar), 7) || ' is closed'",
            "'{\"hours\": ' || entries.hours || ', \"month\": \"' || left(cast(closes.month_start_date as varchar), 7) || '\"}'"
        ) }}
    from entries
    inner join closes
        on entries.realm_id = closes.realm_id
        and entries.spent_date between closes.month_start_date and closes.month_end_date
    left join erp on entries.time_entry_id = erp.time_entry_id
    where
        entries.billing_method = 'time_and_materials'
        and entries.is_billable
        and entries.is_known_employee
        and entries.approval_status = 'approved'
        and entries.hours > 0
        and erp.time_entry_id is null
)

select * from final
