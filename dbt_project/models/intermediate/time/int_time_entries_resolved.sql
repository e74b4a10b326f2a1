{#- Every time entry with the real employee, project, client, contract and legal entity it
    belongs to (identity resolved), and the employee's attributes on the day worked (SCD2).
    Nothing is filtered: unknown projects and people keep their rows with null keys resolved
    to the stand-alone identity, for the exception models to report. -#}
with time_entries as (
    select * from {{ ref('stg_time__time_entries') }}
),

time_users as (
    select * from {{ ref('stg_time__users') }}
),

employee_ids as (
    select * from {{ ref('int_employee_source_ids') }}
    where source_system = 'time'
),

project_ids as (
    select * from {{ ref('int_project_source_ids') }}
    where source_system = 'time'
),

projects as (
    select * from {{ ref('int_projects') }}
),

employees as (
    select * from {{ ref('int_employees') }}
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

resolved as (
    select
        time_entries.*,
        employee_ids.employee_id,
        employee_ids.match_method != 'unmatched' as is_known_employee,
        project_ids.project_id,
        projects.is_in_psa as is_known_project,
        projects.client_id,
        projects.contract_id,
        projects.billing_method,
        projects.is_internal as is_internal_project,
        projects.project_status,
        projects.status_changed_date as project_status_changed_date,
        projects.legal_entity as project_legal_entity,
        time_users.role as time_user_role
    from time_entries
    left join employee_ids
        on cast(time_entries.time_user_id as {{ dbt.type_string() }}) = employee_ids.source_id
    left join project_ids
        on cast(time_entries.time_project_id as {{ dbt.type_string() }}) = project_ids.source_id
    left join projects on project_ids.project_id = projects.project_id
    left join time_users on time_entries.time_user_id = time_users.time_user_id
),

final as (
    select
        resolved.time_entry_id,
        resolved.time_user_id,
        resolved.employee_id,
        coalesce(resolved.is_known_employee, false) as is_known_employee,
        employees.employee_version_id,
        employees.grade,
        employees.practice,
        employees.region,
        employees.legal_entity as employee_legal_entity,
        -- the role a rate card prices: the person's grade that day (HR), else the time tool's role
        coalesce(employees.grade, resolved.time_user_role) as rate_role,
        resolved.time_project_id,
        resolved.project_code,
        resolved.project_code_normalised,
        resolved.project_id,
        coalesce(resolved.is_known_project, false) as is_known_project,
        coalesce(resolved.is_internal_project, false) as is_internal_project,
        resolved.client_id,
        resolved.contract_id,
        resolved.billing_method,
        resolved.project_status,
        resolved.project_status_changed_date,
        coalesce(resolved.project_legal_entity, employees.legal_entity) as legal_entity,
        legal_entities.erp_realm_id as realm_id,
        legal_entities.functional_currency,
        resolved.task_id,
        resolved.task_name,
        resolved.spent_date,
        resolved.hours,
        resolved.notes,
        resolved.is_billable,
        resolved.approval_status,
        resolved.submitted_at,
        resolved.approved_at,
        resolved.is_locked,
        resolved.is_billed,
        resolved.harvest_invoice_id,
        resolved.harvest_billable_rate,
        resolved.created_at,
        resolved.updated_at,
        resolved.is_deleted,
        resolved.deleted_detected_at
    from resolved
    left join employees
        on resolved.employee_id = employees.employee_id
        and resolved.spent_date >= employees.valid_from
        and (employees.valid_to is null or resolved.spent_date < employees.valid_to)
    left join legal_entities
        on coalesce(resolved.project_legal_entity, employees.legal_entity) = legal_entities.legal_entity
)

select * from final
