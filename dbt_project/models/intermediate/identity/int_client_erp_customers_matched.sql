{#- For each client and each realm where it has a contract: the ERP client customers that claim
    to be it (by `sfdc:` note or by normalised name). Exactly one is a mapping; none or several
    is CLIENT_UNMAPPED, never a guess. A manual override decides alone when present. -#}
with accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

contracts as (
    select * from {{ ref('stg_crm__contracts') }}
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

erp_customers as (
    select * from {{ ref('stg_erp__customers') }}
    where not is_job
),

overrides as (
    select * from {{ ref('identity_overrides') }}
    where entity_type = 'client' and source_system = 'erp'
),

account_realms as (
    select distinct
        contracts.account_id,
        contracts.legal_entity,
        legal_entities.erp_realm_id as realm_id
    from contracts
    inner join legal_entities on contracts.legal_entity = legal_entities.legal_entity
    where legal_entities.erp_realm_id is not null  -- an entity with no ERP company has no customers
),

automatic as (
    select
        account_realms.account_id,
        account_realms.realm_id,
        erp_customers.erp_customer_key
    from account_realms
    inner join accounts on account_realms.account_id = accounts.account_id
    inner join erp_customers
        on account_realms.realm_id = erp_customers.realm_id
        and (
            erp_customers.crm_account_id = accounts.account_id
            or erp_customers.customer_name_normalised = accounts.account_name_normalised
        )
),

manual as (
    select
        overrides.canonical_source_id as account_id,
        erp_customers.realm_id,
        erp_customers.erp_customer_key
    from overrides
    inner join erp_customers on overrides.source_id = erp_customers.erp_customer_key
),

candidates as (
    select
        account_realms.account_id,
        account_realms.legal_entity,
        account_realms.realm_id,
        exists(
            select 1 from manual
            where manual.account_id = account_realms.account_id and manual.realm_id = account_realms.realm_id
        ) as has_override
    from account_realms
),

chosen as (
    select
        candidates.*,
        manual.erp_customer_key,
        'manual_override' as match_method
    from candidates
    inner join manual
        on candidates.account_id = manual.account_id and candidates.realm_id = manual.realm_id
    where candidates.has_override
    union all
    select
        candidates.*,
        automatic.erp_customer_key,
        'automatic' as match_method
    from candidates
    left join automatic
        on candidates.account_id = automatic.account_id and candidates.realm_id = automatic.realm_id
    where not candidates.has_override
),

final as (
    select
        account_id as client_id,
        legal_entity,
        realm_id,
        count(erp_customer_key) as matched_customer_count,
        case when count(erp_customer_key) = 1 then min(erp_customer_key) end as erp_customer_key,
        {{ dbt.listagg('erp_customer_key', "','", 'order by erp_customer_key') }}
            as candidate_erp_customer_keys,
        min(match_method) as match_method
    from chosen
    group by account_id, legal_entity, realm_id
)

select * from final
