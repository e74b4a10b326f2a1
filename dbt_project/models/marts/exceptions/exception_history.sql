{#- Every exception episode across builds: when a build first saw it, last saw it, and the first
    build that no longer saw it (resolved). `full_refresh: false`: a full rebuild of the
    warehouse never resets ages. Each run's "when" is the warehouse's now (int_as_of). An
    exception that comes back after being resolved opens a new episode. -#}
{{
    config(
        materialized='incremental',
        unique_key='episode_id',
        incremental_strategy='delete+insert',
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
known as (
    select * from {{ this }}
),

open_episodes as (
    select * from known where resolved_at is null
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
        greatest(open_episodes.last_seen_at, as_of.as_of_at) as last_seen_at,
        cast(null as timestamp) as resolved_at
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
        as_of.as_of_at as resolved_at
    from open_episodes
    cross join as_of
    where open_episodes.exception_id not in (select exception_id from current_exceptions)
),

new_episodes as (
    select current_exceptions.*
    from current_exceptions
    where current_exceptions.exception_id not in (select exception_id from open_episodes)
),
{% else %}
new_episodes as (
    select * from current_exceptions
),
{% endif %}

opened as (
    select
        md5(new_episodes.exception_id || '|' || cast(as_of.as_of_at as varchar)) as episode_id,
        new_episodes.exception_id,
        new_episodes.rule_code,
        new_episodes.record_type,
        new_episodes.record_id,
        new_episodes.owner,
        new_episodes.severity,
        new_episodes.reason,
        as_of.as_of_at as first_detected_at,
        as_of.as_of_at as last_seen_at,
        cast(null as timestamp) as resolved_at
    from new_episodes
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
