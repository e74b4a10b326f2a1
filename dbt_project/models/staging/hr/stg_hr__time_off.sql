with source as (
    select * from {{ source('hr', 'time_off') }}
),

final as (
    select
        employee_id,
        snapshot_date,
        date as time_off_date,
        {{ hours('hours') }} as hours,
        type as time_off_type,
        file_name
    from source
)

select * from final
