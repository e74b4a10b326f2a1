{#- Every exception episode across builds: when a build first saw it, last saw it, and the first
    build that no longer saw it (resolved). Each build's "when" is the warehouse's now (int_as_of),
    and its identity dbt's invocation id.

    History cannot be rebuilt from the sources, so this model is incremental with
    full_refresh: false: `dbt build --full-refresh` leaves it alone and merges into it as usual,
    and ages never reset. Merge, per exception_id:
    - open and still in fct_exceptions: keep first_detected_at, move last_seen_at to now;
    - open and gone from fct_exceptions: resolved_at = now;
    - in fct_exceptions with no open episode (new, or back after being resolved): a new episode.
    Resolved episodes are never touched again.
    Each episode also keeps the record's context (business date, project, client, employee,
    legal entity, whether the row blocked), as last seen while open, so a resolved episode still says whose it was. -#}
{#- Strategy: delete+insert, which DuckDB and PostgreSQL 15 both support: the episodes this run
    writes replace theirs by episode_id. -#}
{{
    config(
        materialized='incremental',
        unique_key='episode_id',
        incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'delete+insert'),
        on_schema_change='append_new_columns',
        full_refresh=false,
    )
}}
with current_exceptions as (
    select * from {{ ref('fct_exceptions') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

{% if is_incremental() %}
{#- columns added after the table was first built are null on its older rows (history written
    before the run identity was kept); on_schema_change appends them to the table -#}
{#- (in a unit test `this` is the fixture's name, a string, with every column) -#}
{%- set existing_columns = [] -%}
{%- if this is not string -%}
{%- set existing_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
{%- endif -%}
{#- (the record's context columns came later still: null on episodes written before them) -#}
{%- set added_columns = {
    'first_detected_invocation_id': dbt.type_string(), 'last_seen_invocation_id': dbt.type_string(),
    'resolved_invocation_id': dbt.type_string(), 'occurred_on': 'date', 'project_id': dbt.type_string(),
    'client_id': dbt.type_string(), 'employee_id': dbt.type_string(), 'legal_entity': dbt.type_string(),
    'is_blocking': 'boolean',
} -%}
known as (
    select
        *
        {%- for column, column_type in added_columns.items() %}
        {%- if existing_columns and column not in existing_columns %},
        cast(null as {{ column_type }}) as {{ column }}
        {%- endif %}
        {%- endfor %}
    from {{ this }}
),

open_episodes as (
    select * from known
    where resolved_at is null
),

still_open as (
    select
        open_episodes.episode_id,
        open_episodes.exception_id,
        current_exceptions.rule_code,
        current_exceptions.record_type,
        current_exceptions.record_id,
        current_exceptions.owner,
        current_exceptions.severity,
        current_exceptions.reason,
        open_episodes.first_detected_at,
        case
            when open_episodes.last_seen_at > as_of.as_of_at then open_episodes.last_seen_at
            else as_of.as_of_at
        end as last_seen_at,
        cast(null as timestamp) as resolved_at,
        open_episodes.first_detected_invocation_id,
        '{{ exception_run_id() }}' as last_seen_invocation_id,
        cast(null as {{ dbt.type_string() }}) as resolved_invocation_id,
        current_exceptions.occurred_on,
        current_exceptions.project_id,
        current_exceptions.client_id,
        current_exceptions.employee_id,
        current_exceptions.legal_entity,
        current_exceptions.is_blocking
    from open_episodes
    inner join current_exceptions on open_episodes.exception_id = current_exceptions.exception_id
    cross join as_of
),

resolved_now as (
    select
        open_episodes.episode_id,
        open_episodes.exception_id,
        open_episodes.rule_code,
        open_episodes.record_type,
        open_episodes.record_id,
        open_episodes.owner,
        open_episodes.severity,
        open_episodes.reason,
        open_episodes.first_detected_at,
        open_episodes.last_seen_at,
        as_of.as_of_at as resolved_at,
        open_episodes.first_detected_invocation_id,
        open_episodes.last_seen_invocation_id,
        '{{ exception_run_id() }}' as resolved_invocation_id,
        open_episodes.occurred_on,
        open_episodes.project_id,
        open_episodes.client_id,
        open_episodes.employee_id,
        open_episodes.legal_entity,
        open_episodes.is_blocking
    from open_episodes
    left join current_exceptions on open_episodes.exception_id = current_exceptions.exception_id
    cross join as_of
    where current_exceptions.exception_id is null
),

new_exceptions as (
    select current_exceptions.*
    from current_exceptions
    left join open_episodes on current_exceptions.exception_id = open_episodes.exception_id
    where open_episodes.exception_id is null
),
{% else %}
new_exceptions as (
    select * from current_exceptions
),
{% endif %}

opened as (
    select
            -- the run's identity too: an exception resolved and back within one as_of is a new episode
        {{ dbt.hash("new_exceptions.exception_id || '|' || cast(as_of.as_of_at as "
            ~ dbt.type_string() ~ ") || '|" ~ exception_run_id() ~ "'") }}
            as episode_id,
        new_exceptions.exception_id,
        new_exceptions.rule_code,
        new_exceptions.record_type,
        new_exceptions.record_id,
        new_exceptions.owner,
        new_exceptions.severity,
        new_exceptions.reason,
        as_of.as_of_at as first_detected_at,
        as_of.as_of_at as last_seen_at,
        cast(null as timestamp) as resolved_at,
        '{{ exception_run_id() }}' as first_detected_invocation_id,
        '{{ exception_run_id() }}' as last_seen_invocation_id,
        cast(null as {{ dbt.type_string() }}) as resolved_invocation_id,
        new_exceptions.occurred_on,
        new_exceptions.project_id,
        new_exceptions.client_id,
        new_exceptions.employee_id,
        new_exceptions.legal_entity,
        new_exceptions.is_blocking
    from new_exceptions
    cross join as_of
),

final as (
    select * from opened
    {% if is_incremental() %}
    union all
    select * from still_open
    union all
    select * from resolved_now
    {% endif %}
)

select * from final
