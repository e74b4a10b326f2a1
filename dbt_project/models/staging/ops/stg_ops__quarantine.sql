{#- Records the loaders refused (malformed, missing ids, type drift), from every raw dataset.
    One model for the five quarantine tables: they share one shape by construction. The API
    loaders ask for a quarantined record again every run and record how it was resolved; the HR
    drop folder cannot be asked again (a corrected file is a new delivery), so its rows carry no
    resolution and no outstanding flag. -#}
{%- set columns = {
    'quarantine_id': dbt.type_string(), 'source': dbt.type_string(), 'table_name': dbt.type_string(), 'record_key': dbt.type_string(),
    'reason': dbt.type_string(), 'payload': dbt.type_string(), 'quarantined_at': type_timestamp_tz(),
    'resolved_at': type_timestamp_tz(), 'resolution': dbt.type_string(), 'resolved_by_load': dbt.type_string(),
} -%}

with
{% for dataset in ['crm', 'psa', 'time', 'hr', 'erp'] %}
{{ dataset }}_quarantine as (
    {{ optional_source(dataset, 'quarantine', columns) }}
),
{% endfor %}

unioned as (
    {% for dataset in ['crm', 'psa', 'time', 'hr', 'erp'] %}
    select
        '{{ dataset }}' as dataset,
        *
    from {{ dataset }}_quarantine
    {{ "union all" if not loop.last }}
    {% endfor %}
),

final as (
    select
        quarantine_id,
        dataset,
        source as source_system,
        table_name,
        record_key,
        reason,
        payload,
        cast(quarantined_at as timestamp) as quarantined_at,
        cast(resolved_at as timestamp) as resolved_at,
        resolution,
        resolved_by_load,
        case when dataset != 'hr' then resolved_at is null end as is_outstanding
    from unioned
)

select * from final
