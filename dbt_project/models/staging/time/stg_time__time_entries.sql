{#- Current version of every time entry Harvest still has; entries found deleted (Harvest has
    no deletions feed, see ingestion/harvest/deletions.py) are flagged, not dropped. -#}
with source as (
    select * from {{ source('time', 'time_entries') }}
),

deletions as (
    {{ optional_source('time', 'time_entries_deletions', {'id': 'bigint', 'detected_at': 'timestamp with time zone'}) }}
),

final as (
    select
        source.id as time_entry_id,
        source.user__id as time_user_id,
        source.client__id as time_client_id,
        source.project__id as time_project_id,
        source.project__code as project_code,
        {{ normalise_project_code('source.project__code') }} as project_code_normalised,
        source.task__id as task_id,
        source.task__name as task_name,
        cast(source.spent_date as date) as spent_date,
        {{ hours('source.hours') }} as hours,
        {{ hours('source.rounded_hours') }} as rounded_hours,
        coalesce(source.notes, '') as notes,
        coalesce(source.billable, false) as is_billable,
        coalesce(source.is_locked, false) as is_locked,
        source.locked_reason,
        coalesce(source.is_closed, false) as is_closed,
        coalesce(source.is_billed, false) as is_billed,
        coalesce(source.is_running, false) as is_running,
        {{ rate('source.billable_rate') }} as harvest_billable_rate,
        source.approval_status,
        {{ utc('source.submitted_at') }} as submitted_at,
        {{ utc('source.approved_at') }} as approved_at,
        source.external_reference,
        source.invoice__id as harvest_invoice_id,
        {{ utc('source.created_at') }} as created_at,
        {{ utc('source.updated_at') }} as updated_at,
        deletions.id is not null as is_deleted,
        cast(deletions.detected_at as timestamp) as deleted_detected_at
    from source
    left join deletions on source.id = deletions.id
)

select * from final
