{#- One row per real project: every PSA workspace, plus each time-tool project whose code the
    PSA does not have (kept so its hours stay visible; TIME_UNKNOWN_PROJECT reports it). -#}
with source_ids as (
    select * from {{ ref('int_project_source_ids') }}
),

psa_projects as (
    select * from {{ ref('stg_psa__projects') }}
),

time_projects as (
    select * from {{ ref('stg_time__projects') }}
),

client_ids as (
    select * from {{ ref('int_client_source_ids') }}
),

contracts as (
    select * from {{ ref('int_contracts') }}
),

by_project as (
    select
        project_id,
        min(case when source_system = 'psa' then source_id end) as psa_project_id,
        min(case when source_system = 'time' then source_id end) as time_project_id,
        {{ dbt.listagg("case when source_system = 'time' then source_id end", "','", "order by source_id") }}
            as time_project_ids,
        {{ dbt.listagg(
            "case when source_system = 'time' then source_code end", "','", "order by source_code"
        ) }}
            as time_project_codes,
        {{ dbt.listagg("case when source_system = 'erp' then source_id end", "','", "order by source_id") }}
            as erp_job_keys,
        {{ dbt.listagg("distinct match_method", "','", "order by match_method") }} as source_match_methods
    from source_ids
    group by project_id
),

psa_rows as (
    select
        by_project.project_id,
        psa_projects.project_code,
        psa_projects.project_code_normalised,
        psa_projects.project_name,
        psa_projects.crm_account_id as client_id,
        contracts.contract_id,
        psa_projects.contract_number,
        psa_projects.billing_method,
        psa_projects.project_status,
        psa_projects.status_changed_date,
        psa_projects.practice,
        psa_projects.legal_entity,
        psa_projects.currency_code,
        psa_projects.budget_hours,
        psa_projects.budget_amount,
        psa_projects.start_date,
        psa_projects.due_date,
        psa_projects.project_lead_email,
        psa_projects.billing_method = 'internal' as is_internal,
        true as is_in_psa,
        by_project.psa_project_id,
        by_project.time_project_id,
        by_project.time_project_ids,
        by_project.time_project_codes,
        by_project.erp_job_keys,
        by_project.source_match_methods
    from by_project
    inner join psa_projects on by_project.psa_project_id = psa_projects.psa_project_id
    left join contracts on psa_projects.contract_number = contracts.contract_number
),

time_only_rows as (
    select
        by_project.project_id,
        time_projects.project_code,
        time_projects.project_code_normalised,
        time_projects.project_name,
        client_ids.client_id,
        cast(null as {{ dbt.type_string() }}) as contract_id,
        cast(null as {{ dbt.type_string() }}) as contract_number,
        cast(null as {{ dbt.type_string() }}) as billing_method,
        case when time_projects.is_active then 'Active' else 'Archived' end as project_status,
        cast(null as date) as status_changed_date,
        cast(null as {{ dbt.type_string() }}) as practice,
        cast(null as {{ dbt.type_string() }}) as legal_entity,
        cast(null as {{ dbt.type_string() }}) as currency_code,
        cast(null as decimal(12, 4)) as budget_hours,
        cast(null as decimal(18, 2)) as budget_amount,
        time_projects.start_date,
        time_projects.end_date as due_date,
        cast(null as {{ dbt.type_string() }}) as project_lead_email,
        false as is_internal,
        false as is_in_psa,
        by_project.psa_project_id,
        by_project.time_project_id,
        by_project.time_project_ids,
        by_project.time_project_codes,
        by_project.erp_job_keys,
        by_project.source_match_methods
    from by_project
    inner join time_projects
        on by_project.time_project_id = cast(time_projects.time_project_id as {{ dbt.type_string() }})
    left join client_ids
        on client_ids.source_system = 'time'
        and client_ids.source_id = cast(time_projects.time_client_id as {{ dbt.type_string() }})
    where by_project.psa_project_id is null
),

final as (
    select * from psa_rows
    union all
    select * from time_only_rows
)

select * from final
