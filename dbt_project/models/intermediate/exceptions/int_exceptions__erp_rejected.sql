{#- Lines the ERP refused: the reverse-ETL ledger's lines in state `rejected` (the snapshot the
    sync publishes, stg_ledger__line_states; empty before the first sync), with the ERP's own
    code and message. The record is the billable line (`time:<id>` / `milestone:<id>`); time
    lines carry their time entry's project, client, employee and legal entity. Resolved when a
    later sync gets the line accepted (the sync retries a rejected line when its content changes,
    or with RETRY_REJECTED=1). Reads upstream of fct_time_entries only: the rule models feed the
    blocking flags that fct_time_entries carries (int_exceptions_unioned). -#}
with lines as (
    select * from {{ ref('stg_ledger__line_states') }}
    where line_state = 'rejected'
),

entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

rejected as (
    select
        lines.*,
        entries.project_id,
        entries.client_id,
        entries.employee_id,
        coalesce(entries.legal_entity, legal_entities.legal_entity) as legal_entity
    from lines
    left join entries on lines.time_entry_id = entries.time_entry_id
    left join legal_entities on lines.realm_id = legal_entities.erp_realm_id
),

final as (
    select
        {{ exception_columns(
            'ERP_REJECTED', 'billable_line', 'rejected.line_key', 'erp',
            "'line ' || rejected.line_key || '; ' || rejected.erp_entity || ' in realm ' || rejected.realm_id"
                ~ " || '; requestid ' || coalesce(rejected.requestid, 'none')",
            "'the ERP refused the ' || coalesce(rejected.last_operation, 'request') || ' with code '"
                ~ " || coalesce(rejected.erp_error_code, 'unknown') || ': ' || coalesce(rejected.erp_error_message, 'no message')",
            exception_details([
                ['erp_error_code', 'rejected.erp_error_code'],
                ['erp_error_message', 'rejected.erp_error_message'],
                ['operation', 'rejected.last_operation'],
                ['requestid', 'rejected.requestid'],
                ['realm_id', 'rejected.realm_id'],
                ['amount', 'rejected.amount'],
                ['currency_code', 'rejected.currency_code'],
                ['rejected_at', 'rejected.rejected_at'],
                ['sync_run_id', 'rejected.last_sync_run_id'],
            ]),
            'coalesce(rejected.txn_date, cast(rejected.rejected_at as date))',
            'rejected.time_entry_id', 'rejected.project_id', 'rejected.client_id',
            'rejected.employee_id', 'rejected.legal_entity'
        ) }}
    from rejected
)

select * from final
