{#- One row per CRM contract (SOW), with the PSA projects and rate cards that carry its number. -#}
with contracts as (
    select * from {{ ref('stg_crm__contracts') }}
),

opportunities as (
    select * from {{ ref('stg_crm__opportunities') }}
),

psa_projects as (
    select * from {{ ref('stg_psa__projects') }}
),

rate_cards as (
    select * from {{ ref('stg_psa__rate_cards') }}
),

projects_by_contract as (
    select
        contract_number,
        {{ dbt.listagg('psa_project_id', "','", 'order by psa_project_id') }} as psa_project_ids
    from psa_projects
    where contract_number is not null
    group by contract_number
),

rate_cards_by_contract as (
    select
        contract_number,
        {{ dbt.listagg('rate_card_id', "','", 'order by rate_card_id') }} as rate_card_ids
    from rate_cards
    where contract_number is not null
    group by contract_number
),

final as (
    select
        contracts.contract_id,
        contracts.contract_number,
        contracts.account_id as client_id,
        contracts.opportunity_id,
        opportunities.opportunity_name,
        opportunities.practice,
        case contracts.billing_method
            when 'Time and Materials' then 'time_and_materials'
            when 'Fixed Fee - Milestones' then 'fixed_fee_milestones'
            when 'Fixed Fee - Percent Complete' then 'fixed_fee_percent_complete'
            when 'Retainer' then 'retainer'
            else lower(replace(contracts.billing_method, ' ', '_'))
        end as billing_method,
        contracts.contract_status,
        contracts.start_date,
        contracts.end_date,
        contracts.legal_entity,
        contracts.currency_code,
        contracts.contract_value,
        contracts.monthly_fee,
        projects_by_contract.psa_project_ids,
        rate_cards_by_contract.rate_card_ids,
        contracts.created_at,
        contracts.updated_at
    from contracts
    left join opportunities on contracts.opportunity_id = opportunities.opportunity_id
    left join projects_by_contract on contracts.contract_number = projects_by_contract.contract_number
    left join rate_cards_by_contract on contracts.contract_number = rate_cards_by_contract.contract_number
)

select * from final
