with source as (
    select * from {{ source('erp', 'exchange_rates') }}
),

final as (
    select
        realm_id,
        source_currency_code,
        target_currency_code,
        cast(as_of_date as date) as rate_date,
        -- 1 unit of source currency = rate units of target (the realm's home) currency
        cast(rate as decimal(18, 8)) as rate,
        {{ utc('meta_data__last_updated_time') }} as updated_at
    from source
)

select * from final
