{#- Every pipeline run (billable.run_record): one row per `make daily` / `make pipeline` run with
    its outcome, the failed step and exit code, and the run's facts. Read as an optional source: a
    raw database no pipeline run has written to (a bare `make ingest`) has no such table. The last
    build of a run sees that run as `running`, with the facts of the steps before it. -#}
{%- set columns = {
    'run_id': dbt.type_string(), 'mode': dbt.type_string(), 'origin': dbt.type_string(),
    'started_at': dbt.type_timestamp(), 'finished_at': dbt.type_timestamp(), 'outcome': dbt.type_string(),
    'failed_step': dbt.type_string(), 'exit_code': dbt.type_int(), 'duration_s': dbt.type_float(),
    'rows_loaded': dbt.type_bigint(), 'rows_quarantined': dbt.type_bigint(), 'models_built': dbt.type_bigint(),
    'tests_passed': dbt.type_bigint(), 'tests_warned': dbt.type_bigint(), 'tests_failed': dbt.type_bigint(),
    'lines_synced': dbt.type_bigint(), 'lines_rejected': dbt.type_bigint(),
    'exceptions_opened': dbt.type_bigint(), 'exceptions_resolved': dbt.type_bigint(),
    'steps': dbt.type_string(), 'log_path': dbt.type_string(), 'message': dbt.type_string(),
} -%}

with source as (
    {{ optional_source('ops', 'pipeline_runs', columns) }}
),

final as (
    select
        run_id as pipeline_run_id,
        mode as run_mode,
        origin,
        started_at,
        finished_at,
        outcome,
        failed_step,
        exit_code,
        duration_s,
        rows_loaded,
        rows_quarantined,
        models_built,
        tests_passed,
        tests_warned,
        tests_failed,
        lines_synced,
        lines_rejected,
        exceptions_opened,
        exceptions_resolved,
        steps as steps_json,
        log_path,
        message
    from source
)

select * from final
