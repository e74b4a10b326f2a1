with source as (
    select * from {{ source('psa', 'assignments') }}
),

final as (
    select
        id as assignment_id,
        workspace_id as psa_project_id,
        lower(assignee_email) as assignee_email,
        assignee_name,
        role,
        {{ hours('hours_per_week') }} as hours_per_week,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
