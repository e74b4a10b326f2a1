{#- The firm's legal entities as it declares them (firm.legal_entities in the loaders'
    configuration; a sandbox world's legal_entities), one row each. -#}
with source as (
    select * from {{ source('firm', 'legal_entities') }}
),

final as (
    select
        cast(code as {{ dbt.type_string() }}) as legal_entity,
        cast(name as {{ dbt.type_string() }}) as legal_entity_name,
        cast(country as {{ dbt.type_string() }}) as country,
        cast(currency as {{ dbt.type_string() }}) as functional_currency,
        cast(realm_id as {{ dbt.type_string() }}) as erp_realm_id
    from source
)

select * from final
