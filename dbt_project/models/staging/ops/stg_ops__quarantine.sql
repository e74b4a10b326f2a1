{#- Records the loaders refused (malformed, missing ids, type drift), from every raw dataset.
    One model for the five quarantine tables: they share one shape by construction. -#}
{%- set columns = {
    'quarantine_id': 'varchar', 'source': 'varchar', 'table_name': 'varchar', 'record_key': 'varchar',
    'reason': 'varchar', 'payload': 'varchar', 'quarantined_at': 'timestamp with time zone',
} -%}

with
{% for dataset in ['crm', 'psa', 'time', 'hr', 'erp'] %}
{{ dataset }}_quarantine as (
    {{ optional_source(dataset, 'quarantine', columns) }}
),
{% endfor %}

unioned as (
    {% for dataset in ['crm', 'psa', 'time', 'hr', 'erp'] %}
    select '{{ dataset }}' as dataset, * from {{ dataset }}_quarantine
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
        cast(quarantined_at as timestamp) as quarantined_at
    from unioned
)

select * from final
