-- Billed revenue per month: every invoice line dated on or before the clock, by the invoice's
-- month, in the reporting currency (USD) at the ERP's rate of the invoice date.
create or replace temp table lim_billed_revenue as
select cast(date_trunc('month', invoice_date) as date) as month,
       sum(amount) filter (where currency = 'USD') as amount_usd_invoices,
       sum(lim_to_usd(amount, currency, invoice_date)) as amount_reporting
from lim_invoice_lines
group by all;
