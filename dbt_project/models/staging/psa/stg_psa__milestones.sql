with source as (
    select * from {{ source('psa', 'stories') }}
),

final as (
    select
        id as milestone_id,
        workspace_id as psa_project_id,
        title as milestone_name,
        story_type,
        {{ money('amount') }} as amount,
        currency as currency_code,
        cast(due_date as date) as due_date,
        state as milestone_state,
        cast(completed_on as date) as completed_date,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
