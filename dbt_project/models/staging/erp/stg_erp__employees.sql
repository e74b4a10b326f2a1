with source as (
    select * from {{ source('erp', 'employees') }}
),

final as (
    select
        realm_id || ':' || id as erp_employee_key,
        realm_id,
        id as erp_employee_id,
        display_name,
        employee_number,
        lower(primary_email_addr__address) as email,
        coalesce(active, false) as is_active,
        sync_token,
        {{ utc('meta_data__create_time') }} as created_at,
        {{ utc('meta_data__last_updated_time') }} as updated_at
    from source
)

select * from final
