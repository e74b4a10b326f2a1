{#- One row per billable line the reverse ETL has planned, with its state in the ledger: what the
    ERP holds for it (id, SyncToken), or why it was refused. Empty before the first sync. -#}
with source as (
    {{ optional_source('ledger', 'line_states', {
        'line_key': dbt.type_string(), 'line_kind': dbt.type_string(), 'erp_entity': dbt.type_string(), 'realm_id': dbt.type_string(),
        'time_entry_id': 'bigint', 'milestone_id': dbt.type_string(), 'state': dbt.type_string(), 'operation': dbt.type_string(),
        'erp_id': dbt.type_string(), 'sync_token': dbt.type_string(), 'content_hash': dbt.type_string(), 'txn_date': 'date',
        'hours': 'decimal(12,4)', 'rate': 'decimal(18,4)', 'amount': 'decimal(24,8)',
        'currency_code': dbt.type_string(), 'requestid': dbt.type_string(), 'attempts': 'integer',
        'error_code': dbt.type_string(), 'error_message': dbt.type_string(), 'first_sent_at': 'timestamp',
        'acknowledged_at': 'timestamp', 'last_acknowledged_at': 'timestamp', 'rejected_at': 'timestamp',
        'deleted_at': 'timestamp', 'updated_at': 'timestamp', 'last_run_id': dbt.type_string()
    }) }}
),

final as (
    select
        cast(line_key as {{ dbt.type_string() }}) as line_key,
        cast(line_kind as {{ dbt.type_string() }}) as line_kind,
        cast(erp_entity as {{ dbt.type_string() }}) as erp_entity,
        cast(realm_id as {{ dbt.type_string() }}) as realm_id,
        cast(time_entry_id as bigint) as time_entry_id,
        cast(milestone_id as {{ dbt.type_string() }}) as milestone_id,
        cast(state as {{ dbt.type_string() }}) as line_state,
        cast(operation as {{ dbt.type_string() }}) as last_operation,
        cast(erp_id as {{ dbt.type_string() }}) as erp_id,
        case when erp_id is not null then realm_id || ':' || erp_id end as erp_record_key,
        cast(sync_token as {{ dbt.type_string() }}) as sync_token,
        cast(content_hash as {{ dbt.type_string() }}) as content_hash,
        cast(txn_date as date) as txn_date,
        cast(hours as decimal(12, 4)) as hours,
        cast(rate as decimal(18, 4)) as rate,
        cast(amount as decimal(24, 8)) as amount,
        cast(currency_code as {{ dbt.type_string() }}) as currency_code,
        cast(requestid as {{ dbt.type_string() }}) as requestid,
        cast(attempts as integer) as attempts,
        cast(error_code as {{ dbt.type_string() }}) as erp_error_code,
        cast(error_message as {{ dbt.type_string() }}) as erp_error_message,
        cast(first_sent_at as {{ dbt.type_timestamp() }}) as first_sent_at,
        cast(acknowledged_at as {{ dbt.type_timestamp() }}) as acknowledged_at,
        cast(last_acknowledged_at as {{ dbt.type_timestamp() }}) as last_acknowledged_at,
        cast(rejected_at as {{ dbt.type_timestamp() }}) as rejected_at,
        cast(deleted_at as {{ dbt.type_timestamp() }}) as deleted_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        cast(last_run_id as {{ dbt.type_string() }}) as last_sync_run_id
    from source
)

select * from final
