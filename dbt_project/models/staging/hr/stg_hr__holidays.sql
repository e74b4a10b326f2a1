with source as (
    select * from {{ source('hr', 'holidays') }}
),

final as (
    select
        legal_entity,
        snapshot_date,
        date as holiday_date,
        name as holiday_name,
        file_name
    from source
)

select * from final
