{#- Current version of every Harvest expense; deleted ones flagged, not dropped, once the loader
    confirmed the deletion (see stg_time__time_entries and ingestion/harvest/deletions.py). -#}
with source as (
    select * from {{ source('time', 'expenses') }}
),

deletions_open as (
    {{ harvest_open_deletions('expenses') }}
),

flagged as (
    select
        source.*,
        {{ harvest_deletion_status('source', 'deletions_open') }} as deletion_status,
        deletions_open.detected_at as deletion_detected_at,
        deletions_open.confirmed_at as deletion_confirmed_at
    from source
    left join deletions_open on source.id = deletions_open.id
),

final as (
    select
        id as expense_id,
        user__id as time_user_id,
        client__id as time_client_id,
        project__id as time_project_id,
        project__code as project_code,
        {{ normalise_project_code('project__code') }} as project_code_normalised,
        expense_category__name as expense_category,
        cast(spent_date as date) as spent_date,
        {{ money('total_cost') }} as amount,
        client__currency as currency_code,
        units,
        coalesce(notes, '') as notes,
        coalesce(billable, false) as is_billable,
        coalesce(is_locked, false) as is_locked,
        coalesce(is_billed, false) as is_billed,
        approval_status,
        {{ utc('submitted_at') }} as submitted_at,
        {{ utc('approved_at') }} as approved_at,
        invoice__id as harvest_invoice_id,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at,
        {{ harvest_deletion_columns() }}
    from flagged
)

select * from final
