with source as (
    select * from {{ source('time', 'tasks') }}
),

final as (
    select
        id as task_id,
        name as task_name,
        coalesce(billable_by_default, false) as is_billable_by_default,
        {{ rate('default_hourly_rate') }} as default_hourly_rate,
        coalesce(is_active, false) as is_active,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
