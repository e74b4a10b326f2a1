{#- dbt.listagg on Spark, keeping the order (dbt-spark's own ignores order_by_clause, with a
    warning): the values are collected with their sort key, sorted, and joined. Like string_agg
    elsewhere, null values are skipped and a group without any value gives null.
    measure may start with `distinct`; order_by_clause: `order by <expression> [asc|desc]` (one
    expression). Without an order the values are sorted (string_agg's order is then unspecified;
    a sorted list is at least the same on every run). -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- set distinct = modules.re.match('(?i)^\\s*distinct\\s+', measure) is not none -%}
{%- set value = modules.re.sub('(?i)^\\s*distinct\\s+', '', measure) -%}
{%- if order_by_clause -%}
{%- set clause = order_by_clause | trim -%}
{%- set descending = modules.re.search('(?i)\\sdesc$', clause) is not none -%}
{%- set key = modules.re.sub('(?i)^order\\s+by\\s+', '', clause) -%}
{%- set key = modules.re.sub('(?i)\\s+(asc|desc)$', '', key) -%}
{%- else -%}
{%- set descending = false -%}
{%- set key = value -%}
{%- endif -%}
{%- set pairs -%}
filter(collect_list(named_struct('k', {{ key }}, 'v', cast({{ value }} as string))), pair -> pair.v is not null)
{%- endset -%}
{%- if distinct -%}{%- set pairs -%}array_distinct({{ pairs }}){%- endset -%}{%- endif -%}
{%- set sorted -%}
{{ 'reverse(' if descending }}array_sort({{ pairs }}){{ ')' if descending }}
{%- endset -%}
{%- set collected -%}
transform({{ sorted }}, pair -> pair.v)
{%- endset -%}
{%- if limit_num -%}{%- set collected -%}slice({{ collected }}, 1, {{ limit_num }}){%- endset -%}{%- endif -%}
case when count({{ value }}) > 0 then array_join({{ collected }}, {{ delimiter_text }}) end
{%- endmacro %}
