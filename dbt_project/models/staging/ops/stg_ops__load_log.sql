with source as (
    select * from {{ source('ops', 'load_log') }}
),

final as (
    select
        run_id,
        source as source_name,
        dataset,
        table_name,
        rows as row_count,
        cast(started_at as timestamp) as started_at,
        duration_s,
        status as load_status,
        error as error_message
    from source
)

select * from final
