-- Billed revenue per month: every invoice line dated on or before the clock, by the invoice's
-- month, in the reporting currency (USD) at the ERP's rate on (or last before) the invoice date.
create or replace temp table lim_billed_revenue as
select cast(date_trunc('month', l.invoice_date) as date) as month,
       sum(l.amount * case when l.currency = 'USD' then 1.0 else x.rate end) as amount_reporting
from lim_invoice_lines as l
asof left join lim_rates as x on x.currency = l.currency and l.invoice_date >= x.rate_date
group by all;
