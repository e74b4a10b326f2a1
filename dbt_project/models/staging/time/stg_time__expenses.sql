with source as (
    select * from {{ source('time', 'expenses') }}
),

deletions as (
    {{ optional_source('time', 'expenses_deletions', {'id': 'bigint', 'detected_at': 'timestamp with time zone'}) }}
),

final as (
    select
        source.id as expense_id,
        source.user__id as time_user_id,
        source.client__id as time_client_id,
        source.project__id as time_project_id,
        source.project__code as project_code,
        {{ normalise_project_code('source.project__code') }} as project_code_normalised,
        source.expense_category__name as expense_category,
        cast(source.spent_date as date) as spent_date,
        {{ money('source.total_cost') }} as amount,
        source.client__currency as currency_code,
        source.units,
        coalesce(source.notes, '') as notes,
        coalesce(source.billable, false) as is_billable,
        coalesce(source.is_locked, false) as is_locked,
        coalesce(source.is_billed, false) as is_billed,
        source.approval_status,
        {{ utc('source.submitted_at') }} as submitted_at,
        {{ utc('source.approved_at') }} as approved_at,
        source.invoice__id as harvest_invoice_id,
        {{ utc('source.created_at') }} as created_at,
        {{ utc('source.updated_at') }} as updated_at,
        deletions.id is not null as is_deleted,
        cast(deletions.detected_at as timestamp) as deleted_detected_at
    from source
    left join deletions on source.id = deletions.id
)

select * from final
