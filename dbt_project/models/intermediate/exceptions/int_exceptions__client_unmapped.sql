{#- A client with a contract in a legal entity whose ERP realm has no customer for it, or more
    than one: invoices there cannot be addressed (never guessed). -#}
with matches as (
    select * from {{ ref('int_client_erp_customers_matched') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

final as (
    select
        {{ exception_columns(
            'CLIENT_UNMAPPED', 'crm_account', 'matches.client_id', 'crm',
            "'salesforce account ' || matches.client_id || '; quickbooks realm ' || matches.realm_id"
                ~ " || coalesce('; customers ' || matches.candidate_erp_customer_keys, '')",
            "case when matches.matched_customer_count = 0 then 'no ERP customer for ' || accounts.account_name"
                ~ " || ' in realm ' || matches.realm_id || ' (' || matches.legal_entity || ')'"
                ~ " else matches.matched_customer_count || ' ERP customers match ' || accounts.account_name"
                ~ " || ' in realm ' || matches.realm_id || ': ' || matches.candidate_erp_customer_keys end",
            "'{\"realm_id\": \"' || matches.realm_id || '\", \"matched\": ' || matches.matched_customer_count || '}'",
            'cast(accounts.created_at as date)',
            client_id='matches.client_id', legal_entity='matches.legal_entity'
        ) }}
    from matches
    inner join accounts on matches.client_id = accounts.account_id
    where matches.matched_customer_count <> 1
)

select * from final
