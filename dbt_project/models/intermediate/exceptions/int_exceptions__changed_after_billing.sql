{#- A time entry whose hours now differ from those of the TimeActivity the ERP invoiced: the
    invoice is history and must not be rewritten; Finance decides (credit note, next invoice).
    Hours are compared to the minute, the ERP's resolution (QuickBooks keeps hours and minutes,
    so 1.33 h is posted as 1 h 20 min and is not a change). The invoice must exist by the
    warehouse's now. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

erp as (
    select * from {{ ref('int_time_entries_erp') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

changed as (
    select
        entries.*,
        erp.erp_hours,
        erp.erp_time_activity_key,
        erp.erp_invoice_key,
        erp.invoice_number,
        erp.invoice_date
    from entries
    inner join erp on entries.time_entry_id = erp.time_entry_id
    cross join as_of
    where
        not entries.is_deleted
        and erp.is_invoiced
        and erp.invoice_date <= as_of.as_of_date
        and round(entries.hours * 60, 0) != round(erp.erp_hours * 60, 0)
),

final as (
    select
        {{ time_entry_exception(
            'CHANGED_AFTER_BILLING',
            "'hours are now ' || " ~ display_number('changed.hours') ~ " || ', invoiced as ' || " ~ display_number('changed.erp_hours') ~ " || ' h on invoice '"
                ~ " || coalesce(changed.invoice_number, changed.erp_invoice_key) || ' of '"
                ~ " || cast(changed.invoice_date as " ~ dbt.type_string() ~ ")",
            exception_details([
                ['hours', 'changed.hours'],
                ['invoiced_hours', 'changed.erp_hours'],
                ['erp_time_activity_key', 'changed.erp_time_activity_key'],
                ['erp_invoice_key', 'changed.erp_invoice_key'],
                ['invoice_number', 'changed.invoice_number'],
                ['updated_at', 'changed.updated_at'],
            ]),
            alias='changed'
        ) }}
    from changed
)

select * from final
