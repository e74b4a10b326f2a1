with source as (
    select * from {{ source('erp', 'invoice_lines') }}
),

final as (
    select
        realm_id || ':' || invoice_id || ':' || line_index as erp_invoice_line_key,
        realm_id || ':' || invoice_id as erp_invoice_key,
        realm_id,
        invoice_id as erp_invoice_id,
        line_index,
        line_id,
        line_num,
        detail_type,
        description,
        item_ref__value as erp_item_id,
        cast(qty as decimal(12, 4)) as quantity,
        {{ rate('unit_price') }} as unit_price,
        {{ money('amount') }} as amount,
        cast(service_date as date) as service_date,
        linked_txn_type,
        linked_txn_id,
        case when linked_txn_type = 'TimeActivity' then realm_id || ':' || linked_txn_id end
            as erp_time_activity_key
    from source
)

select * from final
