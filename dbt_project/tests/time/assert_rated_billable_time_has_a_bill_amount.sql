{#- Every billable, approved entry that has a rate (exactly one rate-card version, or the rate
    it was invoiced at) has a bill amount in transaction and in reporting currency: nothing
    rated silently falls out of WIP and revenue (a missing FX rate would). -#}
select
    time_entry_id,
    spent_date,
    currency_code,
    bill_rate,
    bill_amount,
    bill_amount_reporting
from {{ ref('fct_time_entries') }}
where
    is_billable
    and is_approved
    and (matching_rate_count = 1 or is_rated_from_invoice)
    and (bill_amount is null or bill_amount_reporting is null)
