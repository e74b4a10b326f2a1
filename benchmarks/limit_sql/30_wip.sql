-- WIP (unbilled) as of the clock's date D, per transaction currency: approved billable T&M time
-- (approved by the end of D, worked on or before D, not on an invoice dated on or before D) at
-- the standard bill rate (no single rate: hours without value), approved billable expenses not
-- billed, completed milestones not invoiced. Fixed-fee and retainer time is never invoiced by the
-- hour, so it is not WIP (kpis.md says "approved billable time"; see docs/benchmarks.md).
create or replace temp table lim_wip as
with d as (select clock_date from lim_clock),
time_wip as (
    select e.currency, sum(e.hours) as wip_hours,
           sum(e.hours * s.bill_rate) filter (where s.rate_count = 1) as wip_time_amount
    from lim_entries as e
    left join lim_standard_rates as s on s.time_entry_id = e.time_entry_id
    where e.billing_method = 'time_and_materials' and e.billable and e.approval_status = 'approved'
        and e.spent_date <= (select clock_date from d)
        and cast(e.approved_at at time zone 'UTC' as date) <= (select clock_date from d)
        and e.time_entry_id not in (select time_entry_id from lim_billed_time)
    group by all
),
expense_wip as (
    select client__currency as currency, sum(total_cost) as wip_expense_amount
    from r.raw_time.expenses
    where billable and approval_status = 'approved' and not coalesce(is_billed, false)
        and cast(spent_date as date) <= (select clock_date from d)
    group by all
),
milestone_wip as (
    select s.currency, sum(s.amount) as wip_milestone_amount
    from r.raw_psa.stories as s
    where s.story_type = 'milestone' and s.completed_on is not null
        and cast(s.completed_on as date) <= (select clock_date from d)
        and not exists (
            select 1 from lim_invoice_lines as l
            -- hand-made invoices say `Milestone <id>`; lines the sync pushed, `milestone:<id> <title>`
            where regexp_extract(l.description, '^[Mm]ilestone[: ]([0-9]+)', 1) = s.id
        )
    group by all
),
currencies as (
    select currency from time_wip union select currency from expense_wip union select currency from milestone_wip
)
select c.currency,
       coalesce(t.wip_hours, 0) as wip_hours,
       coalesce(t.wip_time_amount, 0) as wip_time_amount,
       coalesce(x.wip_expense_amount, 0) as wip_expense_amount,
       coalesce(m.wip_milestone_amount, 0) as wip_milestone_amount,
       coalesce(t.wip_time_amount, 0) + coalesce(x.wip_expense_amount, 0) + coalesce(m.wip_milestone_amount, 0)
           as wip_amount
from currencies as c
left join time_wip as t on t.currency is not distinct from c.currency
left join expense_wip as x on x.currency is not distinct from c.currency
left join milestone_wip as m on m.currency is not distinct from c.currency;
