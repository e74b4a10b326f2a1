{#- What each load saw of each realm's close date, with the ERP's clock at that moment. -#}
with source as (
    {{ optional_source('erp', 'preferences_history', {
        'realm_id': dbt.type_string(), 'book_close_date': dbt.type_string(),
        'server_time': dbt.type_string(), '_dlt_load_id': dbt.type_string(),
    }) }}
),

final as (
    select
        realm_id,
        cast(book_close_date as date) as book_close_date,
        {{ utc('server_time') }} as observed_at,
        _dlt_load_id as load_id
    from source
)

select * from final
