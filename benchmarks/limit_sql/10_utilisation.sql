-- Monthly billable utilisation per person = billable hours / capacity hours (kpis.md).
-- Capacity = weekly standard hours / 5 on each weekday of employment, minus the legal entity's
-- public holidays, minus time off; days from the first month with time up to the clock.
create or replace temp table lim_days as
select cast(day as date) as day
from range(
    (select date_trunc('month', min(spent_date)) from lim_entries),
    (select clock_date from lim_clock) + 1,
    interval 1 day
) as days(day)
where isodow(day) <= 5;

create or replace temp table lim_holidays as
select distinct legal_entity, date as day from r.raw_hr.holidays;

-- the latest time-off file is the firm's current view (a cancelled absence drops out of it)
create or replace temp table lim_time_off as
select employee_id, date as day, sum(hours) as hours
from r.raw_hr.time_off
where snapshot_date = (select max(snapshot_date) from r.raw_hr.time_off)
group by all;

create or replace temp table lim_capacity as
select e.employee_id, d.day,
       greatest(0, e.weekly_standard_hours / 5 - coalesce(o.hours, 0)) as capacity_hours
from lim_employees as e
inner join lim_days as d on d.day >= e.hire_date and (e.termination_date is null or d.day <= e.termination_date)
left join lim_holidays as h on h.legal_entity = e.legal_entity and h.day = d.day
left join lim_time_off as o on o.employee_id = e.employee_id and o.day = d.day
where h.day is null;

create or replace temp table lim_utilisation as
with capacity as (
    select employee_id, date_trunc('month', day) as month, sum(capacity_hours) as capacity_hours
    from lim_capacity group by all
),
billable as (
    select employee_id, date_trunc('month', spent_date) as month, sum(hours) as billable_hours
    from lim_entries
    where billable and approval_status <> 'rejected' and employee_id is not null
        and spent_date <= (select clock_date from lim_clock)
    group by all
)
select coalesce(c.employee_id, b.employee_id) as employee_id,
       cast(coalesce(c.month, b.month) as date) as month,
       coalesce(c.capacity_hours, 0) as capacity_hours,
       coalesce(b.billable_hours, 0) as billable_hours,
       coalesce(b.billable_hours, 0) / nullif(c.capacity_hours, 0) as billable_utilisation
from capacity as c
full outer join billable as b on c.employee_id = b.employee_id and c.month = b.month;
