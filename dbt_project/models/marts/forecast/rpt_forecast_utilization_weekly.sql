{#- Forecast utilisation: one row per employee and ISO week of the forecast (var forecast_weeks,
    12, full weeks from the first Monday after the as-of date: int_forecast_horizon), for every
    employee with capacity or assigned hours that week.
      capacity_hours          fct_forecast_capacity_daily: standard hours net of holidays and
                              the time off already booked
      assigned_hours          fct_assignments_weekly.planned_hours of the person's assignments
      billable_assigned_hours the part on client (not internal) projects
      forecast_billable_utilization  billable_assigned_hours / capacity_hours (null without
                              capacity, e.g. a week fully on leave: never a division by zero)
      target_billable_utilization    capacity-weighted mean of the days' targets
    Practice, grade and legal entity are the person's version on the week's last working day
    with capacity, else the current one. Comparable with rpt_utilization's billable_utilization
    (actual, by month). -#}
with capacity as (
    select * from {{ ref('fct_forecast_capacity_daily') }}
),

assignments as (
    select * from {{ ref('fct_assignments_weekly') }}
),

projects as (
    select * from {{ ref('dim_projects') }}
),

employees as (
    select * from {{ ref('dim_employees') }}
    where is_current
),

horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

weekly_capacity as (
    select
        capacity.employee_id,
        capacity.week_start_date,
        sum(capacity.standard_hours) as standard_hours,
        sum(capacity.time_off_hours) as time_off_hours,
        sum(case when capacity.is_holiday then 1 else 0 end) as holiday_count,
        sum(capacity.capacity_hours) as capacity_hours,
        sum(capacity.capacity_hours * capacity.target_billable_utilization) as target_billable_hours,
        max(capacity.date_day) as last_day
    from capacity
    cross join horizon
    where capacity.week_start_date >= horizon.first_forecast_week_start_date
        and capacity.week_start_date <= horizon.last_forecast_week_start_date
    group by capacity.employee_id, capacity.week_start_date
),

week_attributes as (
    select
        capacity.employee_id,
        capacity.week_start_date,
        capacity.practice,
        capacity.grade,
        capacity.legal_entity,
        capacity.target_billable_utilization as last_day_target
    from capacity
    inner join weekly_capacity
        on capacity.employee_id = weekly_capacity.employee_id
        and capacity.date_day = weekly_capacity.last_day
),

weekly_assigned as (
    select
        assignments.employee_id,
        assignments.week_start_date,
        sum(assignments.planned_hours) as assigned_hours,
        sum(case when coalesce(projects.is_internal, false) then 0 else assignments.planned_hours end)
            as billable_assigned_hours,
        count(distinct assignments.project_id) as project_count
    from assignments
    cross join horizon
    left join projects on assignments.project_id = projects.project_id
    where assignments.employee_id is not null
        and assignments.week_start_date >= horizon.first_forecast_week_start_date
        and assignments.week_start_date <= horizon.last_forecast_week_start_date
    group by assignments.employee_id, assignments.week_start_date
),

joined as (
    select
        coalesce(weekly_capacity.employee_id, weekly_assigned.employee_id) as employee_id,
        coalesce(weekly_capacity.week_start_date, weekly_assigned.week_start_date) as week_start_date,
        week_attributes.practice,
        week_attributes.grade,
        week_attributes.legal_entity,
        week_attributes.last_day_target,
        coalesce(weekly_capacity.standard_hours, 0) as standard_hours,
        coalesce(weekly_capacity.time_off_hours, 0) as time_off_hours,
        coalesce(weekly_capacity.holiday_count, 0) as holiday_count,
        coalesce(weekly_capacity.capacity_hours, 0) as capacity_hours,
        coalesce(weekly_capacity.target_billable_hours, 0) as target_billable_hours,
        coalesce(weekly_assigned.assigned_hours, 0) as assigned_hours,
        coalesce(weekly_assigned.billable_assigned_hours, 0) as billable_assigned_hours,
        coalesce(weekly_assigned.project_count, 0) as project_count
    from weekly_capacity
    left join week_attributes
        on weekly_capacity.employee_id = week_attributes.employee_id
        and weekly_capacity.week_start_date = week_attributes.week_start_date
    full outer join weekly_assigned
        on weekly_capacity.employee_id = weekly_assigned.employee_id
        and weekly_capacity.week_start_date = weekly_assigned.week_start_date
),

final as (
    select
        joined.employee_id || ':' || cast(joined.week_start_date as {{ dbt.type_string() }})
            as employee_week_id,
        joined.employee_id,
        joined.week_start_date,
        cast({{ dbt.date_trunc('month', 'joined.week_start_date') }} as date) as month_start_date,
        coalesce(joined.practice, employees.practice) as practice,
        coalesce(joined.grade, employees.grade) as grade,
        coalesce(joined.legal_entity, employees.legal_entity) as legal_entity,
        cast(joined.standard_hours as decimal(14, 4)) as standard_hours,
        cast(joined.time_off_hours as decimal(14, 4)) as time_off_hours,
        cast(joined.holiday_count as integer) as holiday_count,
        cast(joined.capacity_hours as decimal(14, 4)) as capacity_hours,
        cast(joined.assigned_hours as decimal(14, 4)) as assigned_hours,
        cast(joined.billable_assigned_hours as decimal(14, 4)) as billable_assigned_hours,
        joined.project_count,
        case when joined.capacity_hours > 0
                then {{ double_to_decimal(
                        divide('joined.billable_assigned_hours', 'joined.capacity_hours'), 10, 6
                    ) }}
        end as forecast_billable_utilization,
        case when joined.capacity_hours > 0
                then {{ double_to_decimal(divide('joined.assigned_hours', 'joined.capacity_hours'), 10, 6) }}
        end as forecast_total_utilization,
        {{ double_to_decimal(
            "case when joined.capacity_hours > 0 then "
                ~ divide('joined.target_billable_hours', 'joined.capacity_hours')
                ~ " else joined.last_day_target end",
            10, 6
        ) }} as target_billable_utilization,
        cast(joined.target_billable_hours as decimal(14, 6)) as target_billable_hours,
        cast(
            case
                when joined.capacity_hours > joined.assigned_hours
                    then joined.capacity_hours - joined.assigned_hours
                else 0
            end as decimal(14, 4)
        ) as unassigned_hours
    from joined
    left join employees on joined.employee_id = employees.employee_id
)

{{ with_names('final', client=false, project_code=false, project_name=false, employee=true) }}
