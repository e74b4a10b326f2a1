-- No invoice is paid more than its total: the payment lines applied to it (fct_payments) sum
-- to at most the invoice's TotalAmt (for a positive invoice).
with applied as (
    select
        erp_invoice_key,
        sum(amount) as applied_amount
    from {{ ref('fct_payments') }}
    where erp_invoice_key is not null
    group by erp_invoice_key
)

select
    invoices.erp_invoice_key,
    invoices.total_amount,
    applied.applied_amount
from applied
inner join {{ ref('fct_invoices') }} as invoices on applied.erp_invoice_key = invoices.erp_invoice_key
where invoices.total_amount >= 0 and applied.applied_amount > invoices.total_amount
