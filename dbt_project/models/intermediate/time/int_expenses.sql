{#- One row per expense the time tool still has (deleted ones removed), with the real employee,
    project, client, contract and legal entity it belongs to, and its amount in transaction
    currency (the client's, as Harvest records it) and in the reporting currency at the ERP's
    rate for the day spent. Expenses are billed through the time tool's invoices (Harvest
    invoice id); they never reach the ERP as lines of their own. Small: a plain table. -#}
with expenses as (
    select * from {{ ref('stg_time__expenses') }}
    where not is_deleted
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

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

resolved as (
    select
        expenses.*,
        employee_ids.employee_id,
        coalesce(employee_ids.match_method != 'unmatched', false) as is_known_employee,
        project_ids.project_id,
        coalesce(projects.is_in_psa, false) as is_known_project,
        coalesce(projects.is_internal, false) as is_internal_project,
        projects.client_id,
        projects.contract_id,
        projects.billing_method,
        projects.legal_entity as project_legal_entity
    from expenses
    left join employee_ids on cast(expenses.time_user_id as {{ dbt.type_string() }}) = employee_ids.source_id
    left join project_ids on cast(expenses.time_project_id as {{ dbt.type_string() }}) = project_ids.source_id
    left join projects on project_ids.project_id = projects.project_id
),

final as (
    select
        resolved.expense_id,
        resolved.time_user_id,
        resolved.time_client_id,
        resolved.time_project_id,
        resolved.project_code as time_project_code,
        resolved.employee_id,
        employees.employee_version_id,
        resolved.is_known_employee,
        resolved.project_id,
        resolved.is_known_project,
        resolved.is_internal_project,
        resolved.client_id,
        resolved.contract_id,
        resolved.billing_method,
        coalesce(resolved.project_legal_entity, employees.legal_entity) as legal_entity,
        legal_entities.erp_realm_id as realm_id,
        resolved.expense_category,
        resolved.spent_date,
        resolved.units,
        resolved.notes,
        resolved.currency_code,
        resolved.amount,
        fx_rates.rate_to_reporting as fx_rate_to_reporting,
        cast(resolved.amount * fx_rates.rate_to_reporting as decimal(24, 8)) as amount_reporting,
        resolved.is_billable,
        resolved.approval_status,
        resolved.approval_status = 'approved' as is_approved,
        resolved.submitted_at,
        resolved.approved_at,
        resolved.is_locked,
        resolved.is_billed,
        resolved.harvest_invoice_id,
        resolved.harvest_invoice_id is not null as is_invoiced,
        resolved.created_at,
        resolved.updated_at
    from resolved
    left join employees
        on resolved.employee_id = employees.employee_id
        and resolved.spent_date >= employees.valid_from
        and (employees.valid_to is null or resolved.spent_date < employees.valid_to)
    left join legal_entities
        on coalesce(resolved.project_legal_entity, employees.legal_entity) = legal_entities.legal_entity
    left join fx_rates
        on resolved.currency_code = fx_rates.currency_code
        and resolved.spent_date = fx_rates.rate_date
)

select * from final
