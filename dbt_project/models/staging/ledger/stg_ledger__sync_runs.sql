{#- One row per reverse-ETL sync run, from the ledger's snapshot (empty before the first sync). -#}
with source as (
    {{ optional_source('ledger', 'sync_runs', {
        'run_id': dbt.type_string(), 'started_at': 'timestamp', 'finished_at': 'timestamp',
        'status': dbt.type_string(), 'is_dry_run': 'boolean', 'is_retry_rejected': 'boolean',
        'warehouse_run_id': dbt.type_string(), 'lines_in_plan': 'integer', 'creates_planned': 'integer',
        'updates_planned': 'integer', 'deletes_planned': 'integer', 'lines_held': 'integer',
        'lines_skipped': 'integer', 'requests_sent': 'integer', 'lines_acknowledged': 'integer',
        'lines_rejected': 'integer', 'lines_deleted': 'integer', 'lines_invoiced_untouched': 'integer',
        'lines_dead_letter': 'integer', 'transport_failures': 'integer', 'realms_failed': dbt.type_string(),
        'message': dbt.type_string(), 'duration_s': type_double(), 'lines_vanished': 'integer',
        'erp_duplicates': 'integer', 'lines_adopted': 'integer', 'erp_records_read': 'integer'
    }) }}
),

final as (
    select
        cast(run_id as {{ dbt.type_string() }}) as sync_run_id,
        cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
        cast(finished_at as {{ dbt.type_timestamp() }}) as finished_at,
        cast(status as {{ dbt.type_string() }}) as run_status,
        cast(is_dry_run as boolean) as is_dry_run,
        cast(is_retry_rejected as boolean) as is_retry_rejected,
        cast(warehouse_run_id as {{ dbt.type_string() }}) as warehouse_run_id,
        cast(lines_in_plan as integer) as lines_in_plan,
        cast(creates_planned as integer) as creates_planned,
        cast(updates_planned as integer) as updates_planned,
        cast(deletes_planned as integer) as deletes_planned,
        cast(lines_held as integer) as lines_held,
        cast(lines_skipped as integer) as lines_skipped,
        cast(requests_sent as integer) as requests_sent,
        cast(lines_acknowledged as integer) as lines_acknowledged,
        cast(lines_rejected as integer) as lines_rejected,
        cast(lines_deleted as integer) as lines_deleted,
        cast(lines_invoiced_untouched as integer) as lines_invoiced_untouched,
        cast(lines_dead_letter as integer) as lines_dead_letter,
        cast(transport_failures as integer) as transport_failures,
        cast(realms_failed as {{ dbt.type_string() }}) as realms_failed,
        cast(message as {{ dbt.type_string() }}) as message,
        cast(duration_s as {{ dbt.type_float() }}) as duration_s,
        cast(lines_vanished as integer) as lines_vanished,
        cast(erp_duplicates as integer) as erp_duplicates,
        cast(lines_adopted as integer) as lines_adopted,
        cast(erp_records_read as integer) as erp_records_read
    from source
)

select * from final
