with source as (
    select * from {{ source('hr', 'files') }}
),

final as (
    select
        file_name,
        kind as file_kind,
        snapshot_date,
        sha256,
        rows as row_count,
        quarantined_rows as quarantined_row_count,
        size_bytes,
        cast(modified_at as timestamp) as modified_at,
        cast(loaded_at as timestamp) as loaded_at
    from source
)

select * from final
