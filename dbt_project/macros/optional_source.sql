{#-
  A source table that exists only once something landed in it (quarantine, deletions), and that a
  newer loader may have widened. When the table is absent, an empty relation with the given columns
  stands in; when it lacks some of the columns (written by an older loader), null stands in for
  them. Downstream SQL is the same either way.
  columns: mapping of column name -> SQL type.
-#}
{% macro optional_source(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set found = adapter.get_relation(relation.database, relation.schema, relation.identifier) if execute else none -%}
    {%- if found is not none -%}
        {%- set present = adapter.get_columns_in_relation(found) | map(attribute='name') | map('lower') | list -%}
        select {% for name, type in columns.items() -%}
            {%- if name | lower in present -%}{{ adapter.quote(name) }}{%- else -%}cast(null as {{ type }}) as {{ adapter.quote(name) }}{%- endif -%}
            {{ ", " if not loop.last }}
        {%- endfor %} from {{ relation }}
    {%- else -%}
        select {% for name, type in columns.items() %}cast(null as {{ type }}) as {{ adapter.quote(name) }}{{ ", " if not loop.last }}{% endfor %} where false
    {%- endif -%}
{%- endmacro %}

