with source as (
    select * from {{ source('psa', 'rate_card_versions') }}
),

final as (
    select
        id as rate_card_version_id,
        rate_card_id,
        role,
        {{ rate('bill_rate') }} as bill_rate,
        currency as currency_code,
        cast(effective_from as date) as effective_from,
        -- inclusive last day; null = open-ended
        cast(effective_to as date) as effective_to,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
