{#-
  A source table that an older loader version may not have written, or written narrower
  (quarantine before its resolution columns, deletions before confirmation, the close history).
  The current loaders create every declared table after a successful load, empty if need be
  (ingestion/run.py), so a missing table is never the normal case of an empty entity: tables that
  are always there are read with plain `source()`. When the table is absent, an empty relation with
  the given columns stands in; when it lacks some of the columns, null stands in for them.
  Downstream SQL is the same either way.
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
