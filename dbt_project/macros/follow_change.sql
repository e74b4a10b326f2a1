{#- Incremental models that follow change by fingerprints (docs/warehouse.md, "Following change").

    Each row of such a model keeps the fingerprints of the inputs it was computed from: a hash of
    its own source row, and one per input it reads through a key (the time user's identity and
    HR versions, the project, the rate cards, the ERP link, the day's exchange rates), each taken
    over the values the model reads. A run computes the current fingerprints, which costs a scan
    of a few columns, and recomputes only the rows whose fingerprints differ from the stored
    ones, or that are new. A row whose inputs did not change is not touched; one whose inputs
    changed in any way is recomputed in full. There is no list of change stamps to keep up to
    date, and an incremental run gives the rows a full refresh gives
    (tests/test_warehouse_incremental.py).

    The model's own code is an input too: every row carries code_fingerprint (below), so a change
    of the code recomputes every row. -#}

{#- A hash of values, as text, never null (row_hash). -#}
{% macro fingerprint(expressions) -%}
{{ row_hash(expressions) }}
{%- endmacro %}

{#- A hash of every column of `relation`, read as `alias`, as the table has them when the model
    runs: nothing to keep in step when the relation gains a column (it then changes every row's
    hash, and every row is recomputed once). -#}
{% macro fingerprint_of_row(relation, alias) -%}
{%- set columns = [] -%}
{%- for column in (adapter.get_columns_in_relation(relation) if execute else []) -%}
{%- do columns.append(alias ~ '.' ~ column.name) -%}
{%- endfor -%}
{{ fingerprint(columns or ['null']) }}
{%- endmacro %}

{#- In an aggregate: a hash of the group's rows (their values), whatever the rows' order. -#}
{% macro fingerprint_of_rows(expressions) -%}
{%- set each = row_hash(expressions) -%}
{{ row_hash([dbt.listagg(each, "'|'", 'order by ' ~ each)]) }}
{%- endmacro %}

{#- The code a row was computed with, a literal: the model's own SQL, and the fingerprint of the
    whole project (every model, macro, seed and var) that billable.transform passes in
    BILLABLE_PROJECT_FINGERPRINT. dbt run by hand without it sees only the model's own SQL: after
    changing a macro, build with --full-refresh. -#}
{% macro code_fingerprint() -%}
'{{ code_fingerprint_value() }}'
{%- endmacro %}

{% macro code_fingerprint_value() -%}
{{ return(local_md5(model.raw_code ~ '\n' ~ env_var('BILLABLE_PROJECT_FINGERPRINT', ''))) }}
{%- endmacro %}

{#- Whether this run recomputes only what changed: an incremental run over a table that has the
    fingerprints (a table built before its model followed change has not: every row is computed,
    and dbt adds the columns), computed by the same code. After a code change every row is
    recomputed anyway: the plain query, without the comparison with the table, needs half the
    memory (on `large`, the comparison of 4.5 M rows ran out of DuckDB's 3 GiB). -#}
{% macro follows_change(fingerprints) -%}
{#- a unit test has no table of its own (`this` is none): it computes every row -#}
{%- if this is none or not is_incremental() -%}{{ return(false) }}{%- endif -%}
{%- set held = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
{%- for column in ['code_fingerprint'] + fingerprints -%}
{%- if column not in held -%}{{ return(false) }}{%- endif -%}
{%- endfor -%}
{%- set held_code = run_query('select max(code_fingerprint) from ' ~ this) -%}
{%- set code = held_code.columns[0].values()[0] if held_code else none -%}
{{ return(code is none or code == code_fingerprint_value()) }}
{%- endmacro %}

{#- The keys of `current` (a relation or CTE of key and fingerprint columns) to recompute in
    this run: those the model's table does not hold, or holds with another fingerprint or code.
    Fingerprints are never null, so `!=` is exact. -#}
{% macro changed_keys(current, key, fingerprints) -%}
select current_rows.{{ key }}
from {{ current }} as current_rows
left join {{ this }} as existing on current_rows.{{ key }} = existing.{{ key }}
where
    existing.{{ key }} is null
    or existing.code_fingerprint != {{ code_fingerprint() }}
{%- for column in fingerprints %}
    or current_rows.{{ column }} != existing.{{ column }}
{%- endfor %}
{%- endmacro %}

{#- The config of a model that follows change: keyed delete+insert (a keyed overwrite on Spark,
    macros/spark/incremental.sql); after each run, the rows whose key is no longer among the
    `source` model's rows (where `source_condition`) are deleted. -#}
{% macro follow_change_config(key, source, source_condition='true') -%}
{{ config(
    materialized='incremental',
    unique_key=key,
    incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'delete+insert'),
    on_schema_change='sync_all_columns',
    post_hook=["{{ delete_keys_gone(this, '" ~ key ~ "', '" ~ source ~ "', '" ~ source_condition ~ "') }}"],
) }}
{%- endmacro %}

{% macro delete_keys_gone(relation, key, source, source_condition) -%}
{%- set kept = 'select ' ~ key ~ ' from ' ~ ref(source) ~ ' where ' ~ source_condition -%}
{{ delete_where(relation, key ~ ' not in (' ~ kept ~ ')') }}
{%- endmacro %}
