{#-
  A source table that exists only once something landed in it (quarantine, deletions). When it
  is absent, an empty relation with the given columns stands in, so downstream SQL is the same.
  columns: mapping of column name -> SQL type.
-#}
{% macro optional_source(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set found = adapter.get_relation(relation.database, relation.schema, relation.identifier) if execute else none -%}
    {%- if found is not none -%}
        select {% for name in columns %}{{ adapter.quote(name) }}{{ ", " if not loop.last }}{% endfor %} from {{ relation }}
    {%- else -%}
        select {% for name, type in columns.items() %}cast(null as {{ type }}) as {{ adapter.quote(name) }}{{ ", " if not loop.last }}{% endfor %} where false
    {%- endif -%}
{%- endmacro %}
