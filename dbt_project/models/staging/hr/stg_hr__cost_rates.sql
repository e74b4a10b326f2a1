with source as (
    select * from {{ source('hr', 'cost_rates') }}
),

final as (
    select
        employee_id,
        snapshot_date,
        effective_from,
        {{ rate('hourly_cost') }} as hourly_cost,
        currency as currency_code,
        file_name
    from source
)

select * from final
