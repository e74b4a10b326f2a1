with legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

preferences as (
    select * from {{ ref('stg_erp__preferences') }}
),

final as (
    select
        legal_entities.legal_entity,
        legal_entities.legal_entity_name,
        legal_entities.country,
        legal_entities.functional_currency,
        legal_entities.erp_realm_id,
        preferences.home_currency_code as erp_home_currency_code,
        preferences.book_close_date as erp_book_close_date
    from legal_entities
    left join preferences on legal_entities.erp_realm_id = preferences.realm_id
)

select * from final
