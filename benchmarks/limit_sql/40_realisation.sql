-- Realisation per month worked and transaction currency = billed amount / (billable hours x
-- standard rate) on client projects. Billed = invoice lines carrying the month's hours, plus
-- fee lines (milestone, progress, retainer: lines with no TimeActivity) in the invoice's month.
create or replace temp table lim_realisation as
with entries as (
    select e.*, s.rate_count, s.bill_rate
    from lim_entries as e
    left join lim_standard_rates as s on s.time_entry_id = e.time_entry_id
    where e.billing_method is not null and e.billing_method <> 'internal'
        and e.spent_date <= (select clock_date from lim_clock)
),
standard as (
    select cast(date_trunc('month', spent_date) as date) as month, currency,
           sum(hours) filter (where billable and approval_status <> 'rejected') as billable_hours,
           sum(hours * bill_rate) filter (
               where billable and approval_status <> 'rejected' and rate_count = 1
           ) as standard_value
    from entries group by all
),
billed_time as (
    select cast(date_trunc('month', e.spent_date) as date) as month, b.currency, sum(b.amount) as billed_time_amount
    from lim_billed_time as b
    inner join lim_entries as e on e.time_entry_id = b.time_entry_id
    group by all
),
billed_fees as (
    select cast(date_trunc('month', invoice_date) as date) as month, currency, sum(amount) as billed_fee_amount
    from lim_invoice_lines
    where linked_txn_type is null
    group by all
),
keys as (select month, currency from standard union select month, currency from billed_time
         union select month, currency from billed_fees)
select k.month, k.currency,
       coalesce(s.billable_hours, 0) as billable_hours,
       coalesce(s.standard_value, 0) as standard_value,
       coalesce(t.billed_time_amount, 0) as billed_time_amount,
       coalesce(f.billed_fee_amount, 0) as billed_fee_amount,
       (coalesce(t.billed_time_amount, 0) + coalesce(f.billed_fee_amount, 0)) / nullif(s.standard_value, 0)
           as realisation
from keys as k
left join standard as s on s.month = k.month and s.currency is not distinct from k.currency
left join billed_time as t on t.month = k.month and t.currency is not distinct from k.currency
left join billed_fees as f on f.month = k.month and f.currency is not distinct from k.currency;
