{#- exception_details (macros/exceptions.sql) on Spark: a JSON object of the pairs, as text, nulls
    kept as JSON null like json_object elsewhere. -#}
{% macro spark__exception_details(pairs) -%}
to_json(named_struct(
{%- for key, expression in pairs %}
        '{{ key }}', {{ expression }}{{ "," if not loop.last }}
{%- endfor %}
    ), map('ignoreNullFields', 'false'))
{%- endmacro %}
