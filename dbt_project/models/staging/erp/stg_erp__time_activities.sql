with source as (
    select * from {{ source('erp', 'time_activities') }}
),

final as (
    select
        realm_id || ':' || id as erp_time_activity_key,
        realm_id,
        id as erp_time_activity_id,
        cast(txn_date as date) as txn_date,
        name_of,
        billable_status,
        {{ rate('hourly_rate') }} as hourly_rate,
        {{ hours('coalesce(hours, 0) + coalesce(minutes, 0) / 60.0') }} as hours,
        description,
        -- the source time entry, written by whoever posted the line (`harvest:<id> ...`)
        {{ dbt.safe_cast(regexp_group('description', '^harvest:([0-9]+)'), 'bigint') }} as time_entry_id,
        employee_ref__value as erp_employee_id,
        customer_ref__value as erp_customer_id,
        item_ref__value as erp_item_id,
        sync_token,
        {{ utc('meta_data__create_time') }} as created_at,
        {{ utc('meta_data__last_updated_time') }} as updated_at
    from source
)

select * from final
