with source as (
    select * from {{ source('erp', 'items') }}
),

final as (
    select
        realm_id || ':' || id as erp_item_key,
        realm_id,
        id as erp_item_id,
        name as item_name,
        type as item_type,
        {{ rate('unit_price') }} as unit_price,
        coalesce(active, false) as is_active,
        sync_token,
        {{ utc('meta_data__create_time') }} as created_at,
        {{ utc('meta_data__last_updated_time') }} as updated_at
    from source
)

select * from final
