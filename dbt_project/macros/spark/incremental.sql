{#- Incremental models on Spark without Delta or Iceberg: Parquet tables can be neither merged
    into nor deleted from, only appended to or overwritten. The project's incremental models are
    keyed (unique_key) delete+insert, so on Spark they use `insert_overwrite` (config:
    `incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'delete+insert')`)
    without partition_by, which this makes a keyed overwrite: the table is rewritten with its
    rows whose key the new batch does not carry, plus the batch. The same rows as delete+insert,
    at the cost of rewriting the table (Parquet has no row-level change; the tables it serves are
    small next to their inputs). Spark cannot overwrite a table it is reading, so the kept rows are
    first written to `<table>__dbt_keep` (dropped by the next run; publish leaves it out).
    A model with partition_by keeps dbt-spark's own dynamic partition overwrite. -#}
{% macro get_insert_overwrite_sql(source_relation, target_relation, existing_relation) %}
{%- set dest_columns = adapter.get_columns_in_relation(target_relation) -%}
{%- set dest_cols_csv = dest_columns | map(attribute='quoted') | join(', ') -%}
{%- set unique_key = config.get('unique_key') -%}
{%- if unique_key and not config.get('partition_by') and not existing_relation.is_iceberg -%}
{%- set keys = [unique_key] if unique_key is string else unique_key -%}
{%- set keep = spark_scratch_relation(target_relation, 'keep') -%}
{%- do run_query('drop table if exists ' ~ keep) -%}
{%- set match -%}
{% for key in keys %}batch.{{ key }} = existing.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
{%- endset -%}
{%- do run_query(
    'create table ' ~ keep ~ ' using parquet as select ' ~ dest_cols_csv ~ ' from ' ~ target_relation
    ~ ' as existing where not exists (select 1 from ' ~ source_relation ~ ' as batch where ' ~ match ~ ')'
    ~ ' union all select ' ~ dest_cols_csv ~ ' from ' ~ source_relation
) -%}
insert overwrite table {{ target_relation }} select {{ dest_cols_csv }} from {{ keep }}
{%- else -%}
insert overwrite table {{ target_relation }} {{ partition_cols(label="partition") }} select {{ dest_cols_csv }} from {{ source_relation }}
{%- endif -%}
{% endmacro %}


{#- A scratch table beside `relation`, named `<identifier>__dbt_<purpose>`. -#}
{% macro spark_scratch_relation(relation, purpose) -%}
{{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__dbt_' ~ purpose})) }}
{%- endmacro %}
