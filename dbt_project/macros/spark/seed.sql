{#- Seeds on Spark in `session` mode: dbt-spark's own binds each value as '<value>' without
    escaping (a quote in a value breaks the insert, an empty cell becomes the text 'None'). Here
    each value is written as an expression: null for an empty cell, text through its UTF-8 bytes
    in hex (no quoting to get wrong), numbers and dates as their text, cast to the column's type;
    rows as `select ... union all select ...` (a VALUES list takes literals only). -#}
{% macro spark__load_csv_rows(model, agate_table) %}
{%- set batch_size = get_batch_size() -%}
{%- set column_override = model['config'].get('column_types', {}) -%}
{%- set statements = [] -%}
{%- for chunk in agate_table.rows | batch(batch_size) -%}
{%- set selects = [] -%}
{%- for row in chunk -%}
{%- set values = [] -%}
{%- for col_name in agate_table.column_names -%}
{%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
{%- set type = spark_seed_type(column_override.get(col_name, inferred_type)) -%}
{%- do values.append('cast(' ~ spark_seed_literal(row[loop.index0]) ~ ' as ' ~ type ~ ')') -%}
{%- endfor -%}
{%- do selects.append('select ' ~ values | join(', ')) -%}
{%- endfor -%}
{%- set sql = 'insert into ' ~ this.render() ~ ' ' ~ selects | join(' union all ') -%}
{%- do adapter.add_query(sql, abridge_sql_log=True) -%}
{%- if loop.index0 == 0 -%}{%- do statements.append(sql) -%}{%- endif -%}
{%- endfor -%}
{{ return(statements[0]) }}
{% endmacro %}

{% macro spark_seed_literal(value) -%}
{%- if value is none -%}null
{%- elif value is sameas true or value is sameas false -%}{{ 'true' if value else 'false' }}
{%- else -%}decode(unhex('{{ (value if value is string else value | string).encode('utf-8').hex() }}'), 'UTF-8')
{%- endif -%}
{%- endmacro %}


{#- The seeds' column_types are written in standard SQL (`varchar`, as DuckDB and PostgreSQL read
    them); Spark spells an unbounded text `string`. -#}
{% macro spark_seed_type(type) -%}
{{ return('string' if type | lower == 'varchar' else type) }}
{%- endmacro %}

{#- dbt-spark's create_csv_table, with the column types through spark_seed_type. -#}
{% macro spark__create_csv_table(model, agate_table) %}
{%- set column_override = model['config'].get('column_types', {}) -%}
{%- set quote_seed_column = model['config'].get('quote_columns', None) -%}
{%- set columns = [] -%}
{%- for col_name in agate_table.column_names -%}
{%- set type = spark_seed_type(column_override.get(col_name, adapter.convert_type(agate_table, loop.index0))) -%}
{%- do columns.append(adapter.quote_seed_column(col_name | string, quote_seed_column) ~ ' ' ~ type) -%}
{%- endfor -%}
{%- set sql -%}
create table {{ this.render() }} ({{ columns | join(', ') }})
{{ file_format_clause() }}
{{ partition_cols(label="partitioned by") }}
{{ clustered_cols(label="clustered by") }}
{{ location_clause() }}
{{ comment_clause() }}
{%- endset -%}
{%- call statement('_') -%}
{{ sql }}
{%- endcall -%}
{{ return(sql) }}
{% endmacro %}
