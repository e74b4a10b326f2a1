{#- Schemas are named as configured (staging, marts, ...), not prefixed with the target's.
    DuckDB builds into a working file of its own, published by a copy of the file. PostgreSQL and
    Spark build beside the published schemas, into `build_<name>` (BILLABLE_SCHEMA_PREFIX), and
    the publish step swaps them in (billable.transform, docs/publishing.md); a reader that parses
    the project against the published warehouse (`make metrics`) sets the prefix to ''. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
{%- set name = custom_schema_name | trim if custom_schema_name is not none else target.schema -%}
{%- if target.type == 'duckdb' -%}
{{ name }}
{%- else -%}
{{ env_var('BILLABLE_SCHEMA_PREFIX', 'build_') }}{{ name }}
{%- endif -%}
{%- endmacro %}
