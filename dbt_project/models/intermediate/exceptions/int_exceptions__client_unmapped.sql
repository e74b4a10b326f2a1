{#- A CRM account with a contract in a legal entity whose ERP realm has no client customer for
    it, or more than one (by `sfdc:` note or normalised name, int_client_erp_customers_matched):
    its invoices there cannot be addressed, and the warehouse never guesses. One exception per
    account (the record is the CRM account), naming every realm where the match fails. Not
    blocking a time entry: the entry is fine, its invoice has nowhere to go until Finance maps
    the customer (identity_overrides). -#}
with matches as (
    select * from {{ ref('int_client_erp_customers_matched') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

failed_realms as (
    select
        matches.*,
        matches.legal_entity || ' (realm ' || matches.realm_id || '): ' || case
            when matches.matched_customer_count = 0 then 'no ERP customer'
            else matches.matched_customer_count || ' ERP customers ' || matches.candidate_erp_customer_keys
        end as realm_problem
    from matches
    where matches.matched_customer_count != 1
),

by_account as (
    select
        failed_realms.client_id,
        count(*) as failed_realm_count,
        min(failed_realms.legal_entity) as first_legal_entity,
        max(failed_realms.legal_entity) as last_legal_entity,
        {{ dbt.listagg('failed_realms.realm_id', "','", 'order by failed_realms.realm_id') }} as realm_ids,
        {{ dbt.listagg('failed_realms.realm_problem', "'; '", 'order by failed_realms.realm_id') }}
            as realm_problems,
        max(failed_realms.matched_customer_count) as max_matched_customer_count
    from failed_realms
    group by failed_realms.client_id
),

unmapped as (
    select
        by_account.*,
        accounts.account_name,
        accounts.created_at
    from by_account
    inner join accounts on by_account.client_id = accounts.account_id
    cross join as_of
    where accounts.created_at <= as_of.as_of_at
),

final as (
    select
        {{ exception_columns(
            'CLIENT_UNMAPPED', 'crm_account', 'unmapped.client_id', 'crm',
            "'salesforce account ' || unmapped.client_id || '; quickbooks realm(s) ' || unmapped.realm_ids",
            "unmapped.account_name || ' has no single ERP customer: ' || unmapped.realm_problems",
            exception_details([
                ['account_name', 'unmapped.account_name'],
                ['realm_ids', 'unmapped.realm_ids'],
                ['failed_realm_count', 'unmapped.failed_realm_count'],
                ['max_matched_customer_count', 'unmapped.max_matched_customer_count'],
            ]),
            'cast(unmapped.created_at as date)',
            client_id='unmapped.client_id',
            legal_entity='case when unmapped.first_legal_entity = unmapped.last_legal_entity then unmapped.first_legal_entity end'
        ) }}
    from unmapped
)

select * from final
