with source as (
    select * from {{ source('psa', 'rate_cards') }}
),

final as (
    select
        id as rate_card_id,
        workspace_id as psa_project_id,
        contract_number,
        title as rate_card_name,
        currency as currency_code,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
