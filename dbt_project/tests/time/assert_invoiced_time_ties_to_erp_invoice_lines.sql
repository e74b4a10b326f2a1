{#- Invoiced time whose hours still equal the ERP's is valued at what the ERP invoiced: the
    exact bill amount rounded to cents equals the invoice line amount, per entry. (Entries whose
    hours changed after billing are CHANGED_AFTER_BILLING exceptions, not a valuation error.) -#}
select
    time_entry_id,
    hours,
    bill_rate,
    bill_amount,
    invoiced_amount
from {{ ref('fct_time_entries') }}
where
    is_invoiced
    and hours = erp_hours
    and (bill_amount is null or round(bill_amount, 2) != invoiced_amount)
