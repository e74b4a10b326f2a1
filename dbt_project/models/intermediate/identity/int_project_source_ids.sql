{#- Every project record of every system and the PSA project it is: the time tool's projects
    and the ERP's job sub-customers by normalised project code (`prj-123` = `PRJ-00123`), or a
    manual override. A code that matches no PSA project stands alone (TIME_UNKNOWN_PROJECT). -#}
with psa_projects as (
    select * from {{ ref('stg_psa__projects') }}
),

time_projects as (
    select * from {{ ref('stg_time__projects') }}
),

erp_jobs as (
    select * from {{ ref('stg_erp__customers') }}
    where is_job
),

overrides as (
    select * from {{ ref('identity_overrides') }}
    where entity_type = 'project'
),

psa_codes as (
    select
        project_code_normalised,
        count(*) as project_count,
        min(psa_project_id) as psa_project_id
    from psa_projects
    group by project_code_normalised
),

override_targets as (
    select
        overrides.source_system,
        overrides.source_id,
        psa_projects.psa_project_id
    from overrides
    inner join psa_projects on overrides.canonical_source_id = psa_projects.project_code
),

psa_rows as (
    select
        psa_project_id as project_id,
        'psa' as source_system,
        psa_project_id as source_id,
        cast(null as {{ dbt.type_string() }}) as realm_id,
        project_code as source_code,
        'canonical' as match_method
    from psa_projects
),

time_rows as (
    select
        coalesce(
            override_targets.psa_project_id,
            case when psa_codes.project_count = 1 then psa_codes.psa_project_id end,
            'time:' || time_projects.time_project_id
        ) as project_id,
        'time' as source_system,
        cast(time_projects.time_project_id as {{ dbt.type_string() }}) as source_id,
        cast(null as {{ dbt.type_string() }}) as realm_id,
        time_projects.project_code as source_code,
        case
            when override_targets.psa_project_id is not null then 'manual_override'
            when psa_codes.project_count = 1 and time_projects.project_code = psa_codes_exact.project_code
                then 'shared_code'
            when psa_codes.project_count = 1 then 'normalised_code'
            when psa_codes.project_count > 1 then 'ambiguous'
            else 'unmatched'
        end as match_method
    from time_projects
    left join override_targets
        on override_targets.source_system = 'time'
        and override_targets.source_id = cast(time_projects.time_project_id as {{ dbt.type_string() }})
    left join psa_codes on time_projects.project_code_normalised = psa_codes.project_code_normalised
    left join psa_projects as psa_codes_exact on psa_codes.psa_project_id = psa_codes_exact.psa_project_id
),

erp_rows as (
    select
        coalesce(
            override_targets.psa_project_id,
            case when psa_codes.project_count = 1 then psa_codes.psa_project_id end,
            'erp:' || erp_jobs.erp_customer_key
        ) as project_id,
        'erp' as source_system,
        erp_jobs.erp_customer_key as source_id,
        erp_jobs.realm_id,
        erp_jobs.customer_name as source_code,
        case
            when override_targets.psa_project_id is not null then 'manual_override'
            when psa_codes.project_count = 1 then 'normalised_code'
            when psa_codes.project_count > 1 then 'ambiguous'
            else 'unmatched'
        end as match_method
    from erp_jobs
    left join override_targets
        on override_targets.source_system = 'erp'
        and override_targets.source_id = erp_jobs.erp_customer_key
    left join psa_codes
        on {{ normalise_project_code('erp_jobs.customer_name') }} = psa_codes.project_code_normalised
),

final as (
    select * from psa_rows
    union all
    select * from time_rows
    union all
    select * from erp_rows
)

select * from final
