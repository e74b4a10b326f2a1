{#- Planned hours by week: one row per PSA assignment and ISO week (Monday start) holding at
    least one weekday of it. planned_hours = hours_per_week / 5 for each working day of the week
    inside the assignment (start..end inclusive): weekdays that are not public holidays of the
    assignee's legal entity that day (the dim_employees version in force; the project's legal
    entity when the assignee is no HR employee). A full week without holidays plans exactly
    hours_per_week; a week cut by the assignment's start or end, or holding a holiday, plans its
    share. Assignments look forward, so weeks after the as-of date are kept. Small: assignment
    days are a few hundred thousand rows even in the large world, so a plain table. -#}
with assignments as (
    select * from {{ ref('int_assignments_resolved') }}
),

employees as (
    select * from {{ ref('dim_employees') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

calendar as (
    select * from {{ ref('int_legal_entity_working_days') }}
),

assignment_days as (
    select
        assignments.assignment_id,
        assignments.project_id,
        assignments.employee_id,
        assignments.hours_per_week,
        assignments.project_legal_entity,
        dates.date_day,
        dates.week_start_date
    from assignments
    inner join dates
        on dates.date_day >= assignments.start_date
        and dates.date_day <= assignments.end_date
    where not dates.is_weekend
),

with_entity as (
    select
        assignment_days.*,
        coalesce(employees.legal_entity, assignment_days.project_legal_entity) as legal_entity
    from assignment_days
    left join employees
        on assignment_days.employee_id = employees.employee_id
        and assignment_days.date_day >= employees.valid_from
        and (employees.valid_to is null or assignment_days.date_day < employees.valid_to)
),

with_calendar as (
    select
        with_entity.*,
        coalesce(calendar.is_holiday, false) as is_holiday
    from with_entity
    left join calendar
        on with_entity.legal_entity = calendar.legal_entity
        and with_entity.date_day = calendar.date_day
),

final as (
    select
        assignment_id || ':' || cast(week_start_date as {{ dbt.type_string() }}) as assignment_week_id,
        assignment_id,
        week_start_date,
        project_id,
        employee_id,
        max(legal_entity) as legal_entity,
        hours_per_week,
        sum(case when is_holiday then 0 else 1 end) as working_days,
        cast(sum(case when is_holiday then 0 else hours_per_week / 5 end) as decimal(12, 4)) as planned_hours
    from with_calendar
    group by assignment_id, week_start_date, project_id, employee_id, hours_per_week
)

select * from final
