{#- dbt.listagg on Spark, keeping the order (dbt-spark's own ignores order_by_clause, with a
    warning): the values are collected with their sort key, sorted, and joined. Like string_agg
    elsewhere, null values are skipped and a group without any value gives null.
    order_by_clause: `order by <expression> [asc|desc]` (one expression). -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- if order_by_clause -%}
{%- set clause = order_by_clause | trim -%}
{%- set descending = modules.re.search('(?i)\\sdesc$', clause) is not none -%}
{%- set key = modules.re.sub('(?i)^order\\s+by\\s+', '', clause) -%}
{%- set key = modules.re.sub('(?i)\\s+(asc|desc)$', '', key) -%}
{%- set pairs -%}
filter(collect_list(named_struct('k', {{ key }}, 'v', {{ measure }})), pair -> pair.v is not null)
{%- endset -%}
{%- set sorted -%}
{{ 'reverse(' if descending }}array_sort({{ pairs }}){{ ')' if descending }}
{%- endset -%}
{%- set collected -%}
transform({{ sorted }}, pair -> cast(pair.v as string))
{%- endset -%}
{%- else -%}
{%- set collected -%}collect_list(cast({{ measure }} as string)){%- endset -%}
{%- endif -%}
{%- if limit_num -%}{%- set collected -%}slice({{ collected }}, 1, {{ limit_num }}){%- endset -%}{%- endif -%}
case when count({{ measure }}) > 0 then array_join({{ collected }}, {{ delimiter_text }}) end
{%- endmacro %}
