{#-
  Identity normalisation, the one definition used by every match. Unit-tested with
  stg_time__projects and stg_crm__accounts (their .yml).
-#}

{#- `NORTHWIND TRADERS LTD`, `Northwind Traders, Inc.` -> `northwind traders`: lower case, no
    punctuation, single spaces, no trailing legal form. -#}
{% macro normalise_client_name(column) -%}
    nullif(regexp_replace(
        trim({{ regexp_replace_all(regexp_replace_all('lower(' ~ column ~ ')', '[^a-z0-9 ]', ' '), ' +', ' ') }}),
        '( (inc|incorporated|ltd|llc|corp|plc|gmbh|ag|limited|co))+$',
        ''
    ), '')
{%- endmacro %}

{#- `prj-123`, `PRJ00123`, `PRJ-00123` -> `PRJ123`: upper case, alphanumerics only, no leading
    zeros in the number after the letters. -#}
{% macro normalise_project_code(column) -%}
{%- set alphanumerics = regexp_replace_all('upper(' ~ column ~ ')', '[^A-Z0-9]', '') -%}
nullif({{ regexp_replace_all(alphanumerics, '([A-Z])0+([0-9])', '\\1\\2') }}, '')
{%- endmacro %}

{#- Source timestamps (ISO 8601 with Z, +0000 or an offset) as UTC timestamps. -#}
{% macro utc(column) -%}
{{ utc_timestamp(column) }}
{%- endmacro %}

{#- Money and quantities as exact decimals: binary floats never reach a sum. -#}
{% macro money(column) -%}
cast({{ column }} as decimal(18, 2))
{%- endmacro %}

{% macro rate(column) -%}
cast({{ column }} as decimal(18, 4))
{%- endmacro %}

{% macro hours(column) -%}
cast({{ column }} as decimal(12, 4))
{%- endmacro %}

{#- A hash of a row's values (for change detection), as text: nulls and empty strings stay distinct. -#}
{% macro row_hash(columns) -%}
{{ return(adapter.dispatch('row_hash')(columns)) }}
{%- endmacro %}

{% macro default__row_hash(columns) -%}
md5(concat_ws('|' {%- for column in columns %}, coalesce(cast({{ column }} as {{ dbt.type_string() }}), '<null>'){% endfor %}))
{%- endmacro %}

{#- DuckDB hashes the typed values themselves (64 bits): on `large` (4.5 M entries) 4 s where the
    md5 of every value cast to text took 42 s, the largest single cost of int_time_entries
    (docs/benchmarks.md). A changed row keeps its hash with odds of 2^-64. -#}
{% macro duckdb__row_hash(columns) -%}
cast(hash({%- for column in columns %}{{ column }}{{ ", " if not loop.last }}{% endfor %}) as {{ dbt.type_string() }})
{%- endmacro %}
