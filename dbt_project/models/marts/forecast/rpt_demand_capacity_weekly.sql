{#- Demand against capacity: one row per practice and ISO week of the forecast (the weeks of
    rpt_forecast_utilization_weekly), for every practice with people, assignments or pipeline.
      capacity_hours       the practice's people's capacity net of holidays and booked time off
      assigned_hours       hours assigned to the practice's people (assignments of people HR
                           does not know count under their project's practice)
      pipeline_hours       open opportunities of the practice, weighted by probability, spread
                           over their expected period (fct_pipeline_forecast_daily) and turned
                           into hours at the practice's mean bill rate; null when no pipeline
                           day could be priced in hours
      demand_hours         assigned_hours + pipeline_hours
      shortfall_hours      demand beyond capacity (people to find), else 0
      bench_hours          capacity left after demand (people without work), else 0 -#}
with utilization as (
    select * from {{ ref('rpt_forecast_utilization_weekly') }}
),

assignments as (
    select * from {{ ref('fct_assignments_weekly') }}
),

projects as (
    select * from {{ ref('dim_projects') }}
),

pipeline as (
    select * from {{ ref('fct_pipeline_forecast_daily') }}
),

horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

people_weeks as (
    select
        practice,
        week_start_date,
        count(distinct case when capacity_hours > 0 then employee_id end) as headcount,
        sum(capacity_hours) as capacity_hours,
        sum(assigned_hours) as assigned_hours
    from utilization
    group by practice, week_start_date
),

unknown_assignee_weeks as (
    select
        projects.practice,
        assignments.week_start_date,
        sum(assignments.planned_hours) as assigned_hours
    from assignments
    cross join horizon
    left join projects on assignments.project_id = projects.project_id
    where assignments.employee_id is null
        and assignments.week_start_date >= horizon.first_forecast_week_start_date
        and assignments.week_start_date <= horizon.last_forecast_week_start_date
    group by projects.practice, assignments.week_start_date
),

pipeline_weeks as (
    select
        pipeline.practice,
        pipeline.week_start_date,
        count(distinct pipeline.opportunity_id) as opportunity_count,
        sum(pipeline.daily_weighted_amount_reporting) as pipeline_amount_reporting,
        sum(pipeline.daily_weighted_hours) as pipeline_hours,
        sum(case when pipeline.daily_weighted_hours is null then 1 else 0 end) as unpriced_day_count
    from pipeline
    cross join horizon
    where pipeline.week_start_date >= horizon.first_forecast_week_start_date
        and pipeline.week_start_date <= horizon.last_forecast_week_start_date
    group by pipeline.practice, pipeline.week_start_date
),

spine as (
    select
        practice,
        week_start_date
    from people_weeks
    union
    select
        practice,
        week_start_date
    from unknown_assignee_weeks
    union
    select
        practice,
        week_start_date
    from pipeline_weeks
),

joined as (
    select
        spine.practice,
        spine.week_start_date,
        coalesce(people_weeks.headcount, 0) as headcount,
        coalesce(people_weeks.capacity_hours, 0) as capacity_hours,
        coalesce(people_weeks.assigned_hours, 0) + coalesce(unknown_assignee_weeks.assigned_hours, 0)
            as assigned_hours,
        coalesce(pipeline_weeks.opportunity_count, 0) as opportunity_count,
        coalesce(pipeline_weeks.pipeline_amount_reporting, 0) as pipeline_amount_reporting,
        case
            when pipeline_weeks.practice is null then 0
            when pipeline_weeks.unpriced_day_count = 0 then pipeline_weeks.pipeline_hours
        end as pipeline_hours
    from spine
    left join people_weeks
        on spine.practice = people_weeks.practice
        and spine.week_start_date = people_weeks.week_start_date
    left join unknown_assignee_weeks
        on spine.practice = unknown_assignee_weeks.practice
        and spine.week_start_date = unknown_assignee_weeks.week_start_date
    left join pipeline_weeks
        on spine.practice = pipeline_weeks.practice
        and spine.week_start_date = pipeline_weeks.week_start_date
),

final as (
    select
        coalesce(practice, '(none)') || ':' || cast(week_start_date as {{ dbt.type_string() }})
            as practice_week_id,
        practice,
        week_start_date,
        cast({{ dbt.date_trunc('month', 'week_start_date') }} as date) as month_start_date,
        headcount,
        cast(capacity_hours as decimal(14, 4)) as capacity_hours,
        cast(assigned_hours as decimal(14, 4)) as assigned_hours,
        opportunity_count,
        cast(pipeline_amount_reporting as decimal(24, 8)) as pipeline_amount_reporting,
        cast(pipeline_hours as decimal(14, 4)) as pipeline_hours,
        cast(assigned_hours + pipeline_hours as decimal(14, 4)) as demand_hours,
        cast(
            case
                when pipeline_hours is null then null
                when assigned_hours + pipeline_hours > capacity_hours
                    then assigned_hours + pipeline_hours - capacity_hours
                else 0
            end as decimal(14, 4)
        ) as shortfall_hours,
        cast(
            case
                when pipeline_hours is null then null
                when capacity_hours > assigned_hours + pipeline_hours
                    then capacity_hours - assigned_hours - pipeline_hours
                else 0
            end as decimal(14, 4)
        ) as bench_hours
    from joined
)

select * from final
