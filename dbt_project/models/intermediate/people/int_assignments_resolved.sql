{#- Every PSA assignment with its project (dim_projects) and the person it names, resolved by
    e-mail: the HR employee with that address (int_employee_source_ids), else a time-tool user HR
    knows under it; an address nobody knows stays unresolved (employee_id null). -#}
with assignments as (
    select * from {{ ref('stg_psa__assignments') }}
),

source_ids as (
    select * from {{ ref('int_employee_source_ids') }}
),

project_ids as (
    select * from {{ ref('int_project_source_ids') }}
    where source_system = 'psa'
),

projects as (
    select * from {{ ref('int_projects') }}
),

-- one employee per e-mail: HR's own record first, then the time tool's, then the ERP's
people_by_email as (
    select
        email,
        employee_id
    from (
        select
            email,
            employee_id,
            row_number() over (
                partition by email
                order by case source_system when 'hr' then 1 when 'time' then 2 else 3 end, employee_id
            ) as preference
        from source_ids
        where email is not null and match_method != 'unmatched'
    ) as ranked
    where preference = 1
),

final as (
    select
        assignments.assignment_id,
        assignments.psa_project_id,
        project_ids.project_id,
        projects.contract_id,
        projects.client_id,
        projects.legal_entity as project_legal_entity,
        people_by_email.employee_id,
        people_by_email.employee_id is not null as is_known_employee,
        assignments.assignee_email,
        assignments.assignee_name,
        assignments.role,
        assignments.hours_per_week,
        assignments.start_date,
        assignments.end_date,
        assignments.created_at,
        assignments.updated_at
    from assignments
    left join project_ids on assignments.psa_project_id = project_ids.source_id
    left join projects on project_ids.project_id = projects.project_id
    left join people_by_email on assignments.assignee_email = people_by_email.email
)

select * from final
