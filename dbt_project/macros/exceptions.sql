{#- The columns every exception rule model yields, in this order, so fct_exceptions can union
    them. Arguments are SQL expressions, except rule_code, record_type and source_system, which
    are literals. exception_id is a hash of rule_code|record_type|record_id: the same broken
    record gets the same id in every build, which is what exception_history tracks.
    is_record_blocking is the row's own half of "does it hold the record back": a blocking rule
    (seed exception_rules.is_blocking) blocks a row only when this is true as well (TIME_NO_RATE:
    only on time-and-materials projects). Most rules block every row they find: true. -#}
{% macro exception_columns(rule_code, record_type, record_id, source_system, source_ids, reason, details,
                           occurred_on, time_entry_id='null', project_id='null', client_id='null',
                           employee_id='null', legal_entity='null', is_record_blocking='true') -%}
{{ dbt.hash("'" ~ rule_code ~ "|" ~ record_type ~ "|' || cast(" ~ record_id ~ " as " ~ dbt.type_string() ~ ")") }}
            as exception_id,
        '{{ rule_code }}' as rule_code,
        '{{ record_type }}' as record_type,
        cast({{ record_id }} as {{ dbt.type_string() }}) as record_id,
        '{{ source_system }}' as source_system,
        cast({{ source_ids }} as {{ dbt.type_string() }}) as source_ids,
        cast({{ reason }} as {{ dbt.type_string() }}) as reason,
        cast({{ details }} as {{ dbt.type_string() }}) as details,
        cast({{ occurred_on }} as date) as occurred_on,
        cast({{ time_entry_id }} as bigint) as time_entry_id,
        cast({{ project_id }} as {{ dbt.type_string() }}) as project_id,
        cast({{ client_id }} as {{ dbt.type_string() }}) as client_id,
        cast({{ employee_id }} as {{ dbt.type_string() }}) as employee_id,
        cast({{ legal_entity }} as {{ dbt.type_string() }}) as legal_entity,
        cast({{ is_record_blocking }} as boolean) as is_record_blocking
{%- endmacro %}

{#- The standard columns of a time-entry exception; `alias` is a relation with the columns of
    int_time_entries_resolved. source_ids name the entry, its Harvest project (with the code as
    typed) and its Harvest user, so the owner can find them in the time tool. -#}
{% macro time_entry_exception(rule_code, reason, details, alias='entries', is_record_blocking='true') -%}
    {{ exception_columns(
        rule_code, 'time_entry', alias ~ '.time_entry_id', 'time',
        "'harvest time_entry ' || " ~ alias ~ ".time_entry_id || '; harvest project ' || "
            ~ alias ~ ".time_project_id || ' (' || coalesce(" ~ alias ~ ".project_code, 'no code') || '); harvest user ' || "
            ~ alias ~ ".time_user_id",
        reason, details, alias ~ '.spent_date', alias ~ '.time_entry_id', alias ~ '.project_id',
        alias ~ '.client_id', alias ~ '.employee_id', alias ~ '.legal_entity', is_record_blocking
    ) }}
{%- endmacro %}

{#- An exception's details: a JSON object text from [key, SQL expression] pairs, built by the
    engine's JSON function so quotes or backslashes in values can never break it. -#}
{% macro exception_details(pairs) -%}
{{ return(adapter.dispatch('exception_details')(pairs)) }}
{%- endmacro %}

{% macro duckdb__exception_details(pairs) -%}
cast(json_object(
{%- for key, expression in pairs %}
        '{{ key }}', {{ expression }}{{ "," if not loop.last }}
{%- endfor %}
    ) as {{ dbt.type_string() }})
{%- endmacro %}

{#- Engines with json_build_object (Redshift and the like; PostgreSQL has its own, in
    cross_engine.sql). -#}
{% macro default__exception_details(pairs) -%}
cast(json_build_object(
{%- for key, expression in pairs %}
        '{{ key }}', {{ expression }}{{ "," if not loop.last }}
{%- endfor %}
    ) as {{ dbt.type_string() }})
{%- endmacro %}

{#- A number as short text for a reason (8.5, not 8.5000; 100.0): display only, never for
    arithmetic. Engine variants in cross_engine.sql. -#}
{% macro display_number(expression) -%}
{{ return(adapter.dispatch('display_number')(expression)) }}
{%- endmacro %}

{#- The identity of this dbt run, as exception_history records it. A macro, not the bare
    invocation_id, so unit tests can pin it (overrides: macros: exception_run_id). -#}
{% macro exception_run_id() -%}
{{ return(invocation_id) }}
{%- endmacro %}
