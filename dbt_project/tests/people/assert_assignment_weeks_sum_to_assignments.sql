-- fct_assignments' planned hours are exactly the sum of its weeks, and no week plans more than
-- hours_per_week.
with weeks as (
    select
        assignment_id,
        sum(planned_hours) as planned_hours,
        max(planned_hours - hours_per_week) as excess
    from {{ ref('fct_assignments_weekly') }}
    group by assignment_id
)

select
    assignments.assignment_id,
    assignments.planned_hours,
    weeks.planned_hours as weekly_planned_hours,
    weeks.excess
from {{ ref('fct_assignments') }} as assignments
left join weeks on assignments.assignment_id = weeks.assignment_id
where assignments.planned_hours != coalesce(weeks.planned_hours, 0)
    or weeks.excess > 0
