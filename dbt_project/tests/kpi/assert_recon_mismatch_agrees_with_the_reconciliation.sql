-- RECON_MISMATCH and the reconciliation read the same facts the same way: an entry is a
-- RECON_MISMATCH exception exactly when the reconciliation has it as approved billable T&M time
-- of a known employee, above zero hours, never pushed to the ERP, in a closed month, and not
-- held back by a blocking exception. A row here is an entry one of them flags and the other
-- does not.
with items as (
    select items.time_entry_id
    from {{ ref('fct_reconciliation_items') }} as items
    inner join {{ ref('fct_time_entries') }} as entries on items.time_entry_id = entries.time_entry_id
    where
        items.item_type = 'time_entry'
        and items.is_approved_billable_time
        and items.is_known_employee
        and items.time_tool_hours > 0
        and items.erp_time_activity_count = 0
        and items.is_closed_month
        and not entries.has_blocking_exception
),

recon_mismatch as (
    select time_entry_id from {{ ref('int_exceptions__recon_mismatch') }}
)

select
    coalesce(items.time_entry_id, recon_mismatch.time_entry_id) as time_entry_id,
    case when items.time_entry_id is null then 'RECON_MISMATCH only' else 'reconciliation only' end
        as flagged_by
from items
full outer join recon_mismatch on items.time_entry_id = recon_mismatch.time_entry_id
where items.time_entry_id is null or recon_mismatch.time_entry_id is null
