{#- Capacity: one row per employee and weekday of employment (hire_date .. termination_date,
    inclusive), from the firm's first recorded day of work to the warehouse's as-of date.
      standard_hours = weekly_standard_hours / 5 of the employee version in force that day
      capacity_hours = standard_hours, 0 on a public holiday of the legal entity the employee
                       belongs to that day (latest HR holiday list, int_legal_entity_working_days),
                       minus approved time off (int_time_off_current), never below 0.
    Weekends have no row; a holiday keeps its row (is_holiday, capacity 0) so lost hours show.
    Time off on a weekend is ignored; time off on a holiday takes nothing more.

    Range: from the first day anyone recorded work (first Harvest time entry or ERP
    TimeActivity; var capacity_start_date overrides) to int_as_of.as_of_date inclusive, never
    beyond. Built with set operations: employee versions range-joined to the weekdays of
    dim_dates, then the entity calendar looked up by (entity, day); no per-row logic, so the
    large world (~2,500 people, ~2.5 years, ~1.6 M rows) builds in seconds.
    A full rebuild each run: a new time-off snapshot may change any past day. -#}
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

as_of as (
    select * from {{ ref('int_as_of') }}
),

first_work as (
    select min(spent_date) as first_day from {{ ref('stg_time__time_entries') }}
    where not is_deleted
    union all
    select min(txn_date) as first_day from {{ ref('stg_erp__time_activities') }}
),

bounds as (
    select
        {% if var('capacity_start_date', '') -%}
        cast('{{ var("capacity_start_date") }}' as date)
        {%- else -%}
        (select min(first_day) from first_work)
        {%- endif %} as start_date,
        (select max(as_of_date) from as_of) as end_date
),

-- each version's span of employment, clipped to the reporting range
version_spans as (
    select
        employees.employee_version_id,
        employees.employee_id,
        employees.legal_entity,
        employees.practice,
        employees.grade,
        employees.region,
        employees.weekly_standard_hours,
        greatest(employees.valid_from, coalesce(employees.hire_date, employees.valid_from), bounds.start_date)
            as span_start,
        least(
            coalesce({{ dbt.dateadd('day', -1, 'employees.valid_to') }}, bounds.end_date),
            coalesce(employees.termination_date, bounds.end_date),
            bounds.end_date
        ) as span_end
    from employees
    cross join bounds
),

weekdays as (
    select dates.date_day
    from dates
    cross join bounds
    where not dates.is_weekend
        and dates.date_day >= bounds.start_date
        and dates.date_day <= bounds.end_date
),

employee_days as (
    select
        version_spans.employee_id,
        version_spans.employee_version_id,
        weekdays.date_day,
        version_spans.legal_entity,
        version_spans.practice,
        version_spans.grade,
        version_spans.region,
        -- an entity without a calendar (not declared: stg_firm__legal_entities) keeps its days, holiday-free
        coalesce(calendar.is_holiday, false) as is_holiday,
        calendar.holiday_name,
        cast(version_spans.weekly_standard_hours / 5 as decimal(12, 4)) as standard_hours
    from version_spans
    inner join weekdays
        on weekdays.date_day >= version_spans.span_start
        and weekdays.date_day <= version_spans.span_end
    left join calendar
        on version_spans.legal_entity = calendar.legal_entity
        and weekdays.date_day = calendar.date_day
),

final as (
    select
        employee_days.employee_id,
        employee_days.employee_version_id,
        employee_days.date_day,
        employee_days.legal_entity,
        employee_days.practice,
        employee_days.grade,
        employee_days.region,
        employee_days.is_holiday,
        employee_days.holiday_name,
        cast(coalesce(time_off.time_off_hours, 0) as decimal(12, 4)) as time_off_hours,
        time_off.time_off_types,
        employee_days.standard_hours,
        {{ capacity_hours(
            'employee_days.standard_hours', 'time_off.time_off_hours', 'employee_days.is_holiday'
        ) }} as capacity_hours
    from employee_days
    left join time_off
        on employee_days.employee_id = time_off.employee_id
        and employee_days.date_day = time_off.time_off_date
)

select * from final
