with source as (
    select * from {{ source('erp', 'preferences') }}
),

final as (
    select
        realm_id,
        cast(book_close_date as date) as book_close_date,
        home_currency as home_currency_code,
        coalesce(multi_currency_enabled, false) as is_multi_currency_enabled,
        first_month_of_fiscal_year,
        {{ utc('server_time') }} as observed_at
    from source
)

select * from final
