{#-
  The few places where the engines' SQL differs and dbt's cross-database macros (dbt.dateadd,
  dbt.datediff, dbt.safe_cast, dbt.type_*, ...) have nothing to offer. Models call these, never
  engine-only SQL; each has a `default__` (PostgreSQL and engines like it), a `duckdb__` where
  DuckDB's own SQL is kept exactly as it was, and a `spark__` where Spark SQL differs.
-#}

{#- A double-precision float type (dbt.type_float() is single precision on some engines). -#}
{% macro type_double() -%}
{{ return(adapter.dispatch('type_double')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro duckdb__type_double() -%}double{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}


{#- Epoch seconds (a number or its text, e.g. dlt's _dlt_load_id) as a timestamp with time zone. -#}
{% macro epoch_to_timestamp(expression) -%}
{{ return(adapter.dispatch('epoch_to_timestamp')(expression)) }}
{%- endmacro %}

{% macro default__epoch_to_timestamp(expression) -%}
to_timestamp(cast({{ expression }} as {{ type_double() }}))
{%- endmacro %}

{% macro spark__epoch_to_timestamp(expression) -%}
timestamp_seconds(cast({{ expression }} as double))
{%- endmacro %}


{#- An ISO 8601 text (with Z, +0000 or an offset) or a timestamp as a UTC timestamp without time
    zone. PostgreSQL's cast of text to `timestamp` ignores an offset, so it goes through
    timestamptz and is read back in UTC (a value already without time zone is taken to be in the
    session's zone, UTC on the warehouse's connections). -#}
{% macro utc_timestamp(expression) -%}
{{ return(adapter.dispatch('utc_timestamp')(expression)) }}
{%- endmacro %}

{% macro default__utc_timestamp(expression) -%}
cast({{ expression }} as timestamp)
{%- endmacro %}

{% macro postgres__utc_timestamp(expression) -%}
cast(cast({{ expression }} as timestamptz) at time zone 'UTC' as timestamp)
{%- endmacro %}


{#- The first capture group of a regular expression in a text; when it does not match, null (or
    '' on DuckDB: wrap it in dbt.safe_cast or nullif when that matters). -#}
{% macro regexp_group(expression, pattern) -%}
{{ return(adapter.dispatch('regexp_group')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regexp_group(expression, pattern) -%}
(regexp_match({{ expression }}, '{{ pattern }}'))[1]
{%- endmacro %}

{% macro duckdb__regexp_group(expression, pattern) -%}
regexp_extract({{ expression }}, '{{ pattern }}', 1)
{%- endmacro %}

{% macro spark__regexp_group(expression, pattern) -%}
nullif(regexp_extract({{ expression }}, '{{ pattern }}', 1), '')
{%- endmacro %}


{#- The first element of a JSON array held as text (or as JSON), as text. -#}
{% macro json_array_first_text(expression) -%}
{{ return(adapter.dispatch('json_array_first_text')(expression)) }}
{%- endmacro %}

{% macro default__json_array_first_text(expression) -%}
(cast({{ expression }} as jsonb) ->> 0)
{%- endmacro %}

{% macro duckdb__json_array_first_text(expression) -%}
json_extract_string({{ expression }}, '$[0]')
{%- endmacro %}

{% macro spark__json_array_first_text(expression) -%}
get_json_object({{ expression }}, '$[0]')
{%- endmacro %}


{#- display_number (exceptions.sql): the shortest text of the number as a single-precision float,
    a whole number with ".0" (DuckDB's and Spark's rendering, which PostgreSQL's real-to-text
    lacks). -#}
{% macro default__display_number(expression) -%}
cast(cast({{ expression }} as {{ dbt.type_float() }}) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro postgres__display_number(expression) -%}
regexp_replace(cast(cast({{ expression }} as real) as {{ dbt.type_string() }}), '^(-?[0-9]+)$', '\1.0')
{%- endmacro %}
