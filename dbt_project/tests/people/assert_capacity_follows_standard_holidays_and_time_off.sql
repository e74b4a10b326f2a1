-- Every capacity day obeys the rule: weekdays only, inside employment, and
-- capacity = 0 on holidays, else max(0, standard - time off), never above standard.
with capacity as (
    select * from {{ ref('fct_capacity_daily') }}
),

versions as (
    select * from {{ ref('dim_employees') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
)

select
    capacity.employee_id,
    capacity.date_day,
    capacity.standard_hours,
    capacity.time_off_hours,
    capacity.capacity_hours,
    capacity.is_holiday
from capacity
inner join versions on capacity.employee_version_id = versions.employee_version_id
inner join dates on capacity.date_day = dates.date_day
where
    dates.is_weekend
    or capacity.date_day < versions.hire_date
    or capacity.date_day > coalesce(versions.termination_date, capacity.date_day)
    or capacity.date_day < versions.valid_from
    or capacity.date_day >= coalesce(versions.valid_to, cast('9999-12-31' as date))
    or capacity.capacity_hours < 0
    or capacity.capacity_hours > capacity.standard_hours
    or (capacity.is_holiday and capacity.capacity_hours != 0)
    or (
        not capacity.is_holiday
        and capacity.capacity_hours != greatest(0, capacity.standard_hours - capacity.time_off_hours)
    )
