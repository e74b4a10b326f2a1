-- rpt_revenue's billed amounts are the ERP's invoice lines of the contracts, by invoice month and
-- currency, to the cent and (reporting) to the last decimal; every invoice line on a contract is
-- in some contract month. A row here is a month and currency that does not tie.
with revenue as (
    select
        month_start_date,
        currency_code,
        sum(billed_amount) as billed_amount,
        sum(billed_amount_reporting) as billed_amount_reporting
    from {{ ref('rpt_revenue') }}
    group by month_start_date, currency_code
),

lines as (
    select
        cast({{ dbt.date_trunc('month', 'invoice_lines.invoice_date') }} as date) as month_start_date,
        invoice_lines.currency_code,
        sum(invoice_lines.amount) as billed_amount,
        sum(invoice_lines.amount_reporting) as billed_amount_reporting
    from {{ ref('fct_invoice_lines') }} as invoice_lines
    cross join {{ ref('int_as_of') }} as as_of
    where invoice_lines.contract_id is not null and invoice_lines.invoice_date <= as_of.as_of_date
    group by 1, 2
)

select
    coalesce(revenue.month_start_date, lines.month_start_date) as month_start_date,
    coalesce(revenue.currency_code, lines.currency_code) as currency_code,
    revenue.billed_amount as billed_in_revenue,
    lines.billed_amount as billed_in_lines
from revenue
full outer join lines
    on revenue.month_start_date = lines.month_start_date
    and revenue.currency_code = lines.currency_code
where
    coalesce(revenue.billed_amount, 0) != coalesce(lines.billed_amount, 0)
    or coalesce(revenue.billed_amount_reporting, 0) != coalesce(lines.billed_amount_reporting, 0)
