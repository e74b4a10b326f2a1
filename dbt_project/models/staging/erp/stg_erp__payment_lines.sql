with source as (
    select * from {{ source('erp', 'payment_lines') }}
),

final as (
    select
        realm_id || ':' || payment_id || ':' || line_index as erp_payment_line_key,
        realm_id || ':' || payment_id as erp_payment_key,
        realm_id,
        payment_id as erp_payment_id,
        line_index,
        {{ money('amount') }} as amount,
        linked_txn_type,
        linked_txn_id,
        case when linked_txn_type = 'Invoice' then realm_id || ':' || linked_txn_id end as erp_invoice_key
    from source
)

select * from final
