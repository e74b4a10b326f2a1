with source as (
    select * from {{ source('time', 'users') }}
),

final as (
    select
        id as time_user_id,
        first_name,
        last_name,
        lower(email) as email,
        coalesce(is_active, false) as is_active,
        coalesce(is_contractor, false) as is_contractor,
        -- Harvest reports weekly capacity in seconds
        {{ hours('weekly_capacity / 3600.0') }} as weekly_capacity_hours,
        {{ rate('default_hourly_rate') }} as default_hourly_rate,
        {{ rate('cost_rate') }} as cost_rate,
        {{ json_array_first_text('roles') }} as role,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
