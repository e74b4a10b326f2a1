{#- Every client record of every system, with the real client it belongs to and how that was
    decided: manual override, shared id (the ERP customer's `sfdc:` note), normalised name, or
    nothing (then it stands alone and the exception models report it). -#}
with accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

time_clients as (
    select * from {{ ref('stg_time__clients') }}
),

erp_customers as (
    select * from {{ ref('stg_erp__customers') }}
    where not is_job
),

overrides as (
    select * from {{ ref('identity_overrides') }}
    where entity_type = 'client'
),

internal_names as (
    select distinct {{ normalise_client_name('legal_entity_name') }} as name_normalised
    from {{ ref('stg_firm__legal_entities') }}
),

account_names as (
    select
        account_name_normalised,
        count(*) as account_count,
        min(account_id) as account_id
    from accounts
    where not is_deleted
    group by account_name_normalised
),

crm_rows as (
    select
        account_id as client_id,
        'crm' as source_system,
        account_id as source_id,
        cast(null as {{ dbt.type_string() }}) as realm_id,
        account_name as source_name,
        'canonical' as match_method,
        1 as candidate_count
    from accounts
),

time_rows as (
    select
        coalesce(
            overrides.canonical_source_id,
            case when account_names.account_count = 1 then account_names.account_id end,
            'time:' || time_clients.time_client_id
        ) as client_id,
        'time' as source_system,
        cast(time_clients.time_client_id as {{ dbt.type_string() }}) as source_id,
        cast(null as {{ dbt.type_string() }}) as realm_id,
        time_clients.client_name as source_name,
        case
            when overrides.canonical_source_id is not null then 'manual_override'
            when account_names.account_count = 1 then 'normalised_name'
            when account_names.account_count > 1 then 'ambiguous'
            when internal_names.name_normalised is not null then 'internal'
            else 'unmatched'
        end as match_method,
        coalesce(account_names.account_count, 0) as candidate_count
    from time_clients
    left join overrides
        on overrides.source_system = 'time'
        and overrides.source_id = cast(time_clients.time_client_id as {{ dbt.type_string() }})
    left join account_names on time_clients.client_name_normalised = account_names.account_name_normalised
    left join internal_names on time_clients.client_name_normalised = internal_names.name_normalised
),

erp_rows as (
    select
        coalesce(
            overrides.canonical_source_id,
            noted.account_id,
            case when account_names.account_count = 1 then account_names.account_id end,
            'erp:' || erp_customers.erp_customer_key
        ) as client_id,
        'erp' as source_system,
        erp_customers.erp_customer_key as source_id,
        erp_customers.realm_id,
        erp_customers.customer_name as source_name,
        case
            when overrides.canonical_source_id is not null then 'manual_override'
            when noted.account_id is not null then 'shared_id'
            when account_names.account_count = 1 then 'normalised_name'
            when account_names.account_count > 1 then 'ambiguous'
            when internal_names.name_normalised is not null then 'internal'
            else 'unmatched'
        end as match_method,
        coalesce(account_names.account_count, 0) as candidate_count
    from erp_customers
    left join overrides
        on overrides.source_system = 'erp'
        and overrides.source_id = erp_customers.erp_customer_key
    left join accounts as noted on erp_customers.crm_account_id = noted.account_id
    left join account_names on erp_customers.customer_name_normalised = account_names.account_name_normalised
    left join internal_names on erp_customers.customer_name_normalised = internal_names.name_normalised
),

final as (
    select * from crm_rows
    union all
    select * from time_rows
    union all
    select * from erp_rows
)

select * from final
