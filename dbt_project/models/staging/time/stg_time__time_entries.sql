{#- Current version of every time entry Harvest still has; entries found deleted (Harvest has
    no deletions feed, see ingestion/harvest/deletions.py) are flagged, not dropped. A deletion
    counts (is_deleted) only once the loader confirmed it on checks far enough apart; a suspected
    one is shown (deletion_status) but not acted on; an entry served again is not deleted. -#}
with source as (
    select * from {{ source('time', 'time_entries') }}
),

deletions_open as (
    {{ harvest_open_deletions('time_entries') }}
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
        id as time_entry_id,
        user__id as time_user_id,
        client__id as time_client_id,
        project__id as time_project_id,
        project__code as project_code,
        {{ normalise_project_code('project__code') }} as project_code_normalised,
        task__id as task_id,
        task__name as task_name,
        cast(spent_date as date) as spent_date,
        {{ hours('hours') }} as hours,
        {{ hours('rounded_hours') }} as rounded_hours,
        coalesce(notes, '') as notes,
        coalesce(billable, false) as is_billable,
        coalesce(is_locked, false) as is_locked,
        locked_reason,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_billed, false) as is_billed,
        coalesce(is_running, false) as is_running,
        {{ rate('billable_rate') }} as harvest_billable_rate,
        approval_status,
        {{ utc('submitted_at') }} as submitted_at,
        {{ utc('approved_at') }} as approved_at,
        external_reference,
        invoice__id as harvest_invoice_id,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at,
        {{ harvest_deletion_columns() }}
    from flagged
)

select * from final
