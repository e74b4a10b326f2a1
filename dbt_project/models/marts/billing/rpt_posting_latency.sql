{#- Approved-time posting latency (../shared/spec/kpis.md): for each approved time entry the ERP
    holds, the time from its approval in the time tool to the line being present in the ERP.
    "Present" is the ERP's own record: the TimeActivity's creation stamp (MetaData.CreateTime,
    fct_time_entries.erp_posted_at), which is on the same clock as the approval; the ledger says
    whether the reverse ETL posted it (is_posted_by_sync) and when it heard the acknowledgement.
    Lines posted by hand before the integration existed are kept and flagged, so the before and
    after can be compared; a negative latency (posted before the approval was recorded) is kept,
    not hidden. -#}
with entries as (
    select * from {{ ref('fct_time_entries') }}
    where is_in_erp and approved_at is not null
),

ledger as (
    select * from {{ ref('stg_ledger__line_states') }}
    where line_kind = 'time' and acknowledged_at is not null
),

final as (
    select
        entries.time_entry_id,
        entries.erp_time_activity_key,
        entries.project_id,
        entries.client_id,
        entries.employee_id,
        entries.legal_entity,
        entries.realm_id,
        entries.practice,
        entries.spent_date,
        entries.approved_at,
        entries.erp_posted_at,
        cast({{ dbt.date_trunc('month', 'entries.erp_posted_at') }} as date) as posted_month,
        -- a double on every engine (DuckDB divides a decimal by an integer in doubles)
        {{ dbt.cast(dbt.datediff('entries.approved_at', 'entries.erp_posted_at', 'second'), type_double()) }}
        / 3600 as posting_latency_hours,
        {{ dbt.datediff('cast(entries.approved_at as date)', 'cast(entries.erp_posted_at as date)', 'day') }}
            as posting_latency_days,
        ledger.line_key is not null as is_posted_by_sync,
        ledger.acknowledged_at as sync_acknowledged_at,
        ledger.last_sync_run_id as sync_run_id
    from entries
    left join ledger
        on entries.time_entry_id = ledger.time_entry_id
        and entries.erp_time_activity_key = ledger.erp_record_key
)

{#- names beside the ids (macro with_names) -#}

{{ with_names('final', employee=true) }}
