with source as (
    select * from {{ source('erp', 'invoices') }}
),

final as (
    select
        realm_id || ':' || id as erp_invoice_key,
        realm_id,
        id as erp_invoice_id,
        doc_number,
        cast(txn_date as date) as invoice_date,
        cast(due_date as date) as due_date,
        customer_ref__value as erp_customer_id,
        currency_ref__value as currency_code,
        cast(exchange_rate as decimal(18, 8)) as exchange_rate,
        {{ money('total_amt') }} as total_amount,
        {{ money('balance') }} as balance,
        private_note,
        sync_token,
        {{ utc('meta_data__create_time') }} as created_at,
        {{ utc('meta_data__last_updated_time') }} as updated_at
    from source
)

select * from final
