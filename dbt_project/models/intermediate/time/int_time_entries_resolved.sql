{#- Every time entry with the real employee, project, client, contract and legal entity it
    belongs to (identity resolved), and the employee's attributes on the day worked (SCD2).
    Nothing is filtered: unknown projects and people keep their rows with null keys resolved
    to the stand-alone identity, for the exception models to report.

    Follows change (macros/follow_change.sql): a run recomputes only the entries that are new,
    or whose Harvest row, time user (identity match, time-tool role, the employee's HR versions),
    project (identity match and PSA attributes) or the legal entities changed. -#}
{{ follow_change_config('time_entry_id', 'stg_time__time_entries') }}
{%- set fingerprints = ['fingerprint_source', 'fingerprint_user', 'fingerprint_project', 'fingerprint_context'] -%}
{%- set incremental = follows_change(fingerprints) -%}
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

-- the inputs of each entry, fingerprinted (the values this model reads of each)
employee_history as (
    select
        employee_id,
        {{ fingerprint_of_rows([
            'employee_version_id', 'valid_from', 'valid_to', 'grade', 'practice', 'region', 'legal_entity',
        ]) }} as fingerprint
    from employees
    group by employee_id
),

user_inputs as (
    select
        employee_ids.source_id,
        {{ fingerprint([
            'employee_ids.employee_id', 'employee_ids.match_method', 'employee_history.fingerprint',
        ]) }} as fingerprint
    from employee_ids
    left join employee_history on employee_ids.employee_id = employee_history.employee_id
),

project_inputs as (
    select
        project_ids.source_id,
        {{ fingerprint([
            'project_ids.project_id', 'projects.is_in_psa', 'projects.client_id', 'projects.contract_id',
            'projects.billing_method', 'projects.is_internal', 'projects.project_status',
            'projects.status_changed_date', 'projects.legal_entity',
        ]) }} as fingerprint
    from project_ids
    left join projects on project_ids.project_id = projects.project_id
),

context_inputs as (
    select {{ fingerprint_of_rows(['legal_entity', 'erp_realm_id', 'functional_currency']) }} as fingerprint
    from legal_entities
),

inputs as (
    select
        time_entries.time_entry_id,
        {{ fingerprint_of_row(ref('stg_time__time_entries'), 'time_entries') }} as fingerprint_source,
        {{ fingerprint(['user_inputs.fingerprint', 'time_users.role']) }} as fingerprint_user,
        {{ fingerprint(['project_inputs.fingerprint']) }} as fingerprint_project,
        {{ fingerprint(['context_inputs.fingerprint']) }} as fingerprint_context
    -- the tables themselves, not the CTEs above: a CTE read twice is materialised whole by DuckDB
    from {{ ref('stg_time__time_entries') }} as time_entries
    left join user_inputs
        on cast(time_entries.time_user_id as {{ dbt.type_string() }}) = user_inputs.source_id
    left join project_inputs
        on cast(time_entries.time_project_id as {{ dbt.type_string() }}) = project_inputs.source_id
    left join time_users on time_entries.time_user_id = time_users.time_user_id
    cross join context_inputs
),

{% if incremental -%}
changed as (
    {{ changed_keys('inputs', 'time_entry_id', fingerprints) }}
),

{% endif -%}
resolved as (
    select
        time_entries.*,
        inputs.fingerprint_source,
        inputs.fingerprint_user,
        inputs.fingerprint_project,
        inputs.fingerprint_context,
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
    inner join inputs on time_entries.time_entry_id = inputs.time_entry_id
    left join employee_ids
        on cast(time_entries.time_user_id as {{ dbt.type_string() }}) = employee_ids.source_id
    left join project_ids
        on cast(time_entries.time_project_id as {{ dbt.type_string() }}) = project_ids.source_id
    left join projects on project_ids.project_id = projects.project_id
    left join time_users on time_entries.time_user_id = time_users.time_user_id
    {% if incremental -%}
    where time_entries.time_entry_id in (select time_entry_id from changed)
    {%- endif %}
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
        resolved.deleted_detected_at,
        resolved.fingerprint_source,
        resolved.fingerprint_user,
        resolved.fingerprint_project,
        resolved.fingerprint_context,
        -- all of this row's inputs and the code that computed it: what int_time_entries_rated
        -- compares
        {{ fingerprint([
            'resolved.fingerprint_source', 'resolved.fingerprint_user', 'resolved.fingerprint_project',
            'resolved.fingerprint_context', code_fingerprint(),
        ]) }} as fingerprint,
        {{ code_fingerprint() }} as code_fingerprint
    from resolved
    left join employees
        on resolved.employee_id = employees.employee_id
        and resolved.spent_date >= employees.valid_from
        and (employees.valid_to is null or resolved.spent_date < employees.valid_to)
    left join legal_entities
        on coalesce(resolved.project_legal_entity, employees.legal_entity) = legal_entities.legal_entity
)

select * from final
