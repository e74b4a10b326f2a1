{#- One row per real client. CRM accounts are canonical; a time-tool client or ERP customer
    that matches no account is a client of its own (flagged by match_method). -#}
with source_ids as (
    select * from {{ ref('int_client_source_ids') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

erp_matches as (
    select * from {{ ref('int_client_erp_customers_matched') }}
),

by_client as (
    select
        client_id,
        min(case when source_system = 'crm' then source_id end) as crm_account_id,
        min(case when source_system = 'time' then source_id end) as time_client_id,
        {{ dbt.listagg("case when source_system = 'time' then source_id end", "','", "order by source_id") }}
            as time_client_ids,
        {{ dbt.listagg("case when source_system = 'erp' then source_id end", "','", "order by source_id") }}
            as erp_customer_keys,
        min(source_name) as any_source_name,
        max(case when match_method = 'internal' then 1 else 0 end) = 1 as is_internal,
        {{ dbt.listagg("distinct match_method", "','", "order by match_method") }} as match_methods
    from source_ids
    group by client_id
),

erp_by_client as (
    select
        client_id,
        count(*) as contract_realm_count,
        sum(case when matched_customer_count = 1 then 1 else 0 end) as mapped_realm_count
    from erp_matches
    group by client_id
),

final as (
    select
        by_client.client_id,
        coalesce(accounts.account_name, by_client.any_source_name) as client_name,
        accounts.account_name_normalised as client_name_normalised,
        accounts.industry,
        accounts.billing_country,
        accounts.currency_code,
        by_client.crm_account_id,
        by_client.time_client_id,
        by_client.time_client_ids,
        by_client.erp_customer_keys,
        by_client.is_internal,
        by_client.crm_account_id is not null as is_in_crm,
        case
            when by_client.crm_account_id is not null then 'crm'
            when by_client.is_internal then 'internal'
            else 'unmatched'
        end as match_method,
        by_client.match_methods as source_match_methods,
        coalesce(erp_by_client.contract_realm_count, 0) as contract_realm_count,
        coalesce(erp_by_client.mapped_realm_count, 0) as erp_mapped_realm_count
    from by_client
    left join accounts on by_client.crm_account_id = accounts.account_id
    left join erp_by_client on by_client.client_id = erp_by_client.client_id
)

select * from final
