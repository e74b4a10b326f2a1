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


{#- exception_details (exceptions.sql) on PostgreSQL: compact JSON text in DuckDB's layout
    ({"key":value,...}, keys in the given order, null kept), timestamps as DuckDB writes them
    ("2026-01-02 10:00:00", no "T"). Numbers keep PostgreSQL's scale (2.5000 where DuckDB's JSON
    writes a decimal of up to 15 digits as a double, 2.5): equal as JSON values, not as text. -#}
{% macro postgres__exception_details(pairs) -%}
cast('{' ||
{%- for key, expression in pairs %}
        '{{ "," if not loop.first }}"{{ key }}":' || coalesce(cast(
            case when pg_typeof({{ expression }}) in ('timestamp without time zone'::regtype, 'timestamp with time zone'::regtype) then to_json(cast({{ expression }} as text))
            else to_json({{ expression }}) end as text), 'null') ||
{%- endfor %}
    '}' as {{ dbt.type_string() }})
{%- endmacro %}


{#- Division as DuckDB does it: `/` on decimals or integers yields a double there. PostgreSQL
    divides numerics exactly, so a ratio cast to a decimal could round the other way on a tie
    (1.0171875 is 1.01718749999... as a double): it divides doubles too. Spark divides decimals
    into a decimal of at least 6 places, no more when the operands are wide: a ratio applied to a
    fee of 28,611 then drifts by cents (rpt_revenue_forecast_monthly). It divides doubles too. -#}
{% macro divide(numerator, denominator) -%}
{{ return(adapter.dispatch('divide')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__divide(numerator, denominator) -%}
{{ numerator }} / {{ denominator }}
{%- endmacro %}

{% macro postgres__divide(numerator, denominator) -%}
cast({{ numerator }} as double precision) / cast({{ denominator }} as double precision)
{%- endmacro %}

{% macro spark__divide(numerator, denominator) -%}
cast({{ numerator }} as double) / cast({{ denominator }} as double)
{%- endmacro %}


{#- A double (e.g. a `divide`) as decimal(precision, scale), rounded as DuckDB's cast does: the
    double times 10^scale, rounded half away from zero. PostgreSQL's own cast of a double to
    numeric goes through 15 significant digits first, which can round a tie the other way. -#}
{% macro double_to_decimal(expression, precision, scale) -%}
{{ return(adapter.dispatch('double_to_decimal')(expression, precision, scale)) }}
{%- endmacro %}

{% macro default__double_to_decimal(expression, precision, scale) -%}
cast({{ expression }} as decimal({{ precision }}, {{ scale }}))
{%- endmacro %}

{% macro postgres__double_to_decimal(expression, precision, scale) -%}
{%- set factor = 10 ** scale -%}
cast(
    cast(trunc(({{ expression }}) * {{ factor }} + sign({{ expression }}) * 0.5) as bigint)
    / cast({{ factor }} as numeric)
    as decimal({{ precision }}, {{ scale }})
)
{%- endmacro %}


{#- A timestamp with time zone type (Spark's `timestamp` is one: an instant, shown in the
    session's zone). -#}
{% macro type_timestamp_tz() -%}
{{ return(adapter.dispatch('type_timestamp_tz')()) }}
{%- endmacro %}

{% macro default__type_timestamp_tz() -%}timestamp with time zone{%- endmacro %}

{% macro spark__type_timestamp_tz() -%}timestamp{%- endmacro %}


{#- Every match of a regular expression in a text replaced; `replacement` refers to capture
    groups as \1, \2 (Spark writes them $1, $2 and replaces every match without a flag). The
    pattern and replacement are written without quotes. -#}
{% macro regexp_replace_all(expression, pattern, replacement) -%}
{{ return(adapter.dispatch('regexp_replace_all')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(expression, pattern, replacement) -%}
regexp_replace({{ expression }}, '{{ pattern }}', '{{ modules.re.sub("\\\\([0-9])", "$\\1", replacement) }}')
{%- endmacro %}


{#- The ISO day of the week of a date: 1 (Monday) to 7 (Sunday). -#}
{% macro iso_day_of_week(expression) -%}
{{ return(adapter.dispatch('iso_day_of_week')(expression)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(expression) -%}
extract(isodow from {{ expression }})
{%- endmacro %}

{% macro spark__iso_day_of_week(expression) -%}
extract(dayofweek_iso from {{ expression }})
{%- endmacro %}
