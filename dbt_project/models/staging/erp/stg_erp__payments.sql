with source as (
    select * from {{ source('erp', 'payments') }}
),

final as (
    select
        realm_id || ':' || id as erp_payment_key,
        realm_id,
        id as erp_payment_id,
        cast(txn_date as date) as payment_date,
        customer_ref__value as erp_customer_id,
        currency_ref__value as currency_code,
        {{ money('total_amt') }} as total_amount,
        sync_token,
        {{ utc('meta_data__create_time') }} as created_at,
        {{ utc('meta_data__last_updated_time') }} as updated_at
    from source
)

select * from final
