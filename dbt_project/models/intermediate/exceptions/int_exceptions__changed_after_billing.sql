{#- A time entry whose hours now differ from the TimeActivity the ERP invoiced: the invoice is
    history and must not be touched; finance decides (credit note, next invoice). -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }} where not is_deleted
),

erp as (
    select * from {{ ref('int_time_entries_erp') }} where is_invoiced
),

final as (
    select
        {{ time_entry_exception(
            'CHANGED_AFTER_BILLING',
            "'hours are now ' || entries.hours || ', invoiced as ' || erp.erp_hours || ' on invoice '"
                ~ " || coalesce(erp.invoice_number, erp.erp_invoice_key)",
            "'{\"hours\": ' || entries.hours || ', \"invoiced_hours\": ' || erp.erp_hours || ', \"erp_invoice_key\": \"' || "
                ~ "erp.erp_invoice_key || '\"}'"
        ) }}
    from entries
    inner join erp on entries.time_entry_id = erp.time_entry_id
    where entries.hours <> erp.erp_hours
)

select * from final
