{#- The columns every exception rule model yields, in order, so fct_exceptions can union them.
    Arguments are SQL expressions. -#}
{% macro exception_columns(rule_code, record_type, record_id, source_system, source_ids, reason, details,
                           occurred_on, time_entry_id='null', project_id='null', client_id='null',
                           employee_id='null', legal_entity='null') -%}
        '{{ rule_code }}' as rule_code,
        '{{ record_type }}' as record_type,
        cast({{ record_id }} as varchar) as record_id,
        '{{ source_system }}' as source_system,
        cast({{ source_ids }} as varchar) as source_ids,
        cast({{ reason }} as varchar) as reason,
        cast({{ details }} as varchar) as details,
        cast({{ occurred_on }} as date) as occurred_on,
        cast({{ time_entry_id }} as bigint) as time_entry_id,
        cast({{ project_id }} as varchar) as project_id,
        cast({{ client_id }} as varchar) as client_id,
        cast({{ employee_id }} as varchar) as employee_id,
        cast({{ legal_entity }} as varchar) as legal_entity
{%- endmacro %}

{#- The standard columns of a time-entry exception; `alias` is the resolved entries relation. -#}
{% macro time_entry_exception(rule_code, reason, details, alias='entries') -%}
    {{ exception_columns(
        rule_code, 'time_entry', alias ~ '.time_entry_id', 'time',
        "'harvest time_entry ' || " ~ alias ~ ".time_entry_id || '; harvest project ' || "
            ~ alias ~ ".time_project_id || ' (' || coalesce(" ~ alias ~ ".project_code, '?') || '); harvest user ' || "
            ~ alias ~ ".time_user_id",
        reason, details, alias ~ '.spent_date', alias ~ '.time_entry_id', alias ~ '.project_id',
        alias ~ '.client_id', alias ~ '.employee_id', alias ~ '.legal_entity'
    ) }}
{%- endmacro %}
