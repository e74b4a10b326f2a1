with source as (
    select * from {{ source('psa', 'workspaces') }}
),

final as (
    select
        id as psa_project_id,
        project_code,
        {{ normalise_project_code('project_code') }} as project_code_normalised,
        title as project_name,
        client_name,
        {{ normalise_client_name('client_name') }} as client_name_normalised,
        crm_account_id,
        contract_number,
        billing_method,
        {{ hours('budget_hours') }} as budget_hours,
        {{ money('budget_amount') }} as budget_amount,
        currency as currency_code,
        status__message as project_status,
        status__key as project_status_key,
        cast(status_changed_on as date) as status_changed_date,
        practice,
        legal_entity,
        lower(project_lead_email) as project_lead_email,
        cast(start_date as date) as start_date,
        cast(due_date as date) as due_date,
        coalesce(archived, false) as is_archived,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
