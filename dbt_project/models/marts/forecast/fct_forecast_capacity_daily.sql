{#- Capacity ahead: one row per employee and weekday of employment after the as-of date, to the
    end of the forecast horizon (int_forecast_horizon). The same rule as fct_capacity_daily,
    which stops at the as-of date (one definition: macros/capacity.sql): standard_hours =
    weekly_standard_hours / 5 of the employee version in force that day (the current version
    carries forward), 0 on a public holiday of the person's legal entity, minus approved time
    off already booked (int_time_off_current: HR's snapshot holds future bookings), never below
    0. A known termination date ends the rows. The utilisation target is the one in force that
    day (a person override wins over the grade's), as in fct_utilization_daily. -#}
with employees as (
    select * from {{ ref('dim_employees') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

calendar as (
    select * from {{ ref('int_legal_entity_working_days') }}
),

time_off as (
    select * from {{ ref('int_time_off_current') }}
),

targets as (
    select * from {{ ref('utilization_targets') }}
),

horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

weekdays as (
    select
        dates.date_day,
        dates.week_start_date,
        dates.month_start_date
    from dates
    cross join horizon
    where not dates.is_weekend
        and dates.date_day >= horizon.first_forecast_date
        and dates.date_day <= horizon.horizon_end_date
),

employee_days as (
    select
        employees.employee_id,
        employees.employee_version_id,
        weekdays.date_day,
        weekdays.week_start_date,
        weekdays.month_start_date,
        employees.legal_entity,
        employees.practice,
        employees.grade,
        employees.region,
        coalesce(calendar.is_holiday, false) as is_holiday,
        cast(employees.weekly_standard_hours / 5 as decimal(12, 4)) as standard_hours
    from employees
    inner join weekdays
        on weekdays.date_day >= employees.valid_from
        and (employees.valid_to is null or weekdays.date_day < employees.valid_to)
        and (employees.hire_date is null or weekdays.date_day >= employees.hire_date)
        and (employees.termination_date is null or weekdays.date_day <= employees.termination_date)
    left join calendar
        on employees.legal_entity = calendar.legal_entity
        and weekdays.date_day = calendar.date_day
),

day_targets as (
    select
        employee_days.employee_id,
        employee_days.date_day,
        {{ target_in_force() }} as target_billable_utilization
    from employee_days
    {{ utilization_target_joins('targets', 'employee_days') }}
),

final as (
    select
        employee_days.employee_id,
        employee_days.employee_version_id,
        employee_days.date_day,
        employee_days.week_start_date,
        employee_days.month_start_date,
        employee_days.legal_entity,
        employee_days.practice,
        employee_days.grade,
        employee_days.region,
        employee_days.is_holiday,
        cast(coalesce(time_off.time_off_hours, 0) as decimal(12, 4)) as time_off_hours,
        employee_days.standard_hours,
        {{ capacity_hours(
            'employee_days.standard_hours', 'time_off.time_off_hours', 'employee_days.is_holiday'
        ) }} as capacity_hours,
        day_targets.target_billable_utilization
    from employee_days
    left join time_off
        on employee_days.employee_id = time_off.employee_id
        and employee_days.date_day = time_off.time_off_date
    left join day_targets
        on employee_days.employee_id = day_targets.employee_id
        and employee_days.date_day = day_targets.date_day
)

select * from final
