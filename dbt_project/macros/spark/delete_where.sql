{#- Delete the rows of a table for which `condition` is true: `delete from` where the engine can.
    On Spark's Parquet tables (no row-level delete without Delta) the table is overwritten with
    the other rows, kept first in `<table>__dbt_keep` (Spark cannot overwrite a table it reads).
    Use it as a post-hook: `post_hook=["{{ delete_where(this, '...') }}"]`; on Spark the work
    is done here and the hook's own text is empty. -#}
{% macro delete_where(relation, condition) -%}
{{ return(adapter.dispatch('delete_where')(relation, condition)) }}
{%- endmacro %}

{% macro default__delete_where(relation, condition) -%}
delete from {{ relation }} where {{ condition }}
{%- endmacro %}

{% macro spark__delete_where(relation, condition) -%}
{%- if execute -%}
{%- set keep = spark_scratch_relation(relation, 'keep') -%}
{%- do run_query('drop table if exists ' ~ keep) -%}
{#- every row but those the condition holds for (a null condition keeps the row, as delete does) -#}
{%- do run_query('create table ' ~ keep ~ ' using parquet as select * from ' ~ relation ~ ' except all select * from ' ~ relation ~ ' where ' ~ condition) -%}
{%- do run_query('insert overwrite table ' ~ relation ~ ' select * from ' ~ keep) -%}
{%- do run_query('drop table if exists ' ~ keep) -%}
{%- endif -%}
{%- endmacro %}
