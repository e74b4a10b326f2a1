{#- What each load saw of each realm's close date, with the ERP's clock at that moment. -#}
with source as (
    {{ optional_source('erp', 'preferences_history', {
        'realm_id': 'varchar', 'book_close_date': 'varchar',
        'server_time': 'varchar', '_dlt_load_id': 'varchar',
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
