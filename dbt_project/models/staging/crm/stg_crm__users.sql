with source as (
    select * from {{ source('crm', 'user') }}
),

final as (
    select
        id as crm_user_id,
        username,
        lower(email) as email,
        first_name,
        last_name,
        name as full_name,
        coalesce(is_active, false) as is_active,
        title,
        {{ utc('created_date') }} as created_at,
        {{ utc('system_modstamp') }} as updated_at
    from source
)

select * from final
