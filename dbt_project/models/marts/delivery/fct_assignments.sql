{#- Planned hours: one row per PSA assignment (a person on a project in a role, hours per week,
    start..end inclusive), with the project, contract, client and the HR employee resolved by
    e-mail (int_assignments_resolved; is_known_employee false when nobody has that address).
    planned_hours is the assignment's total prorated by working days, the sum of its weeks in
    fct_assignments_weekly: hours_per_week / 5 on each weekday that is not a public holiday of
    the assignee's legal entity. -#}
with assignments as (
    select * from {{ ref('int_assignments_resolved') }}
),

weekly as (
    select * from {{ ref('fct_assignments_weekly') }}
),

planned as (
    select
        assignment_id,
        sum(working_days) as working_days,
        sum(planned_hours) as planned_hours
    from weekly
    group by assignment_id
),

final as (
    select
        assignments.assignment_id,
        assignments.project_id,
        assignments.contract_id,
        assignments.client_id,
        assignments.project_legal_entity,
        assignments.employee_id,
        assignments.is_known_employee,
        assignments.assignee_email,
        assignments.assignee_name,
        assignments.role,
        assignments.hours_per_week,
        assignments.start_date,
        assignments.end_date,
        coalesce(planned.working_days, 0) as working_days,
        cast(coalesce(planned.planned_hours, 0) as decimal(12, 4)) as planned_hours,
        assignments.created_at,
        assignments.updated_at
    from assignments
    left join planned on assignments.assignment_id = planned.assignment_id
)

select * from final
