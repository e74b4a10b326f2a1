with source as (
    select * from {{ source('time', 'projects') }}
),

final as (
    select
        id as time_project_id,
        client__id as time_client_id,
        name as project_name,
        code as project_code,
        {{ normalise_project_code('code') }} as project_code_normalised,
        coalesce(is_active, false) as is_active,
        coalesce(is_billable, false) as is_billable,
        bill_by,
        {{ money('budget') }} as budget,
        cast(starts_on as date) as start_date,
        cast(ends_on as date) as end_date,
        notes,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
