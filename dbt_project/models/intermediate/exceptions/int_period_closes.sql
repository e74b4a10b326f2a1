{#- When each month's books closed, per ERP realm: one row per realm and month up to the month
    of the warehouse's now.

    QuickBooks serves only the current close date (BookCloseDate); every load keeps what it saw,
    with the ERP's clock, in stg_erp__preferences_history. A month is closed when its last day is
    on or before the latest close date observed by the warehouse's now. When it closed:
    - by the finance close policy (vars period_close_working_day, period_close_hour_utc: month M
      closes on the 5th working day of M+1 at 18:00 UTC, in the legal entity's calendar), which
      is all a first load can know of closes before it;
    - unless the observations contradict the policy: a load after the policy moment still saw
      the month open (a late close), or a load before it already saw it closed (an early one).
      Then the first observation showing it closed (after the last one showing it open) dates
      the close: the latest moment it can have closed. -#}
with preferences as (
    select * from {{ ref('stg_erp__preferences') }}
),

preferences_history as (
    select * from {{ ref('stg_erp__preferences_history') }}
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

working_days as (
    select * from {{ ref('int_legal_entity_working_days') }}
),

dates as (
    select * from {{ ref('int_dates') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

-- the current preferences are an observation too (a load that kept no history still has one)
observations as (
    select
        preferences_history.realm_id,
        preferences_history.book_close_date,
        preferences_history.observed_at
    from preferences_history
    cross join as_of
    where preferences_history.observed_at <= as_of.as_of_at
    union
    select
        preferences.realm_id,
        preferences.book_close_date,
        preferences.observed_at
    from preferences
    cross join as_of
    where preferences.observed_at <= as_of.as_of_at
),

latest_observed_at as (
    select
        realm_id,
        max(observed_at) as observed_at
    from observations
    group by realm_id
),

-- the close date the ERP showed last (it can move back when a period is reopened)
latest_observation as (
    select
        observations.realm_id,
        max(observations.book_close_date) as book_close_date
    from observations
    inner join latest_observed_at
        on observations.realm_id = latest_observed_at.realm_id
        and observations.observed_at = latest_observed_at.observed_at
    group by observations.realm_id
),

months as (
    select distinct
        dates.month_start_date,
        dates.month_end_date
    from dates
    cross join as_of
    where dates.month_start_date <= as_of.as_of_date
),

realm_months as (
    select
        legal_entities.erp_realm_id as realm_id,
        legal_entities.legal_entity,
        months.month_start_date,
        months.month_end_date,
        latest_observation.book_close_date,
        coalesce(months.month_end_date <= latest_observation.book_close_date, false) as is_closed
    from legal_entities
    cross join months
    left join latest_observation on legal_entities.erp_realm_id = latest_observation.realm_id
    where legal_entities.erp_realm_id is not null  -- an entity with no ERP company has no books to close
),

policy as (
    select
        realm_months.*,
        {{ dbt.dateadd('hour', var('period_close_hour_utc'), 'cast(close_day.date_day as timestamp)') }}
            as policy_closed_at
    from realm_months
    inner join working_days as month_end_day
        on realm_months.legal_entity = month_end_day.legal_entity
        and realm_months.month_end_date = month_end_day.date_day
    inner join working_days as close_day
        on realm_months.legal_entity = close_day.legal_entity
        and close_day.working_day_number
        = month_end_day.working_day_number + {{ var('period_close_working_day') }}
        and close_day.is_working_day
),

last_seen_open as (
    select
        policy.realm_id,
        policy.month_end_date,
        max(observations.observed_at) as last_seen_open_at
    from policy
    inner join observations
        on policy.realm_id = observations.realm_id
        and observations.book_close_date < policy.month_end_date
    group by policy.realm_id, policy.month_end_date
),

first_seen_closed as (
    select
        policy.realm_id,
        policy.month_end_date,
        min(observations.observed_at) as first_seen_closed_at
    from policy
    left join last_seen_open
        on policy.realm_id = last_seen_open.realm_id and policy.month_end_date = last_seen_open.month_end_date
    inner join observations
        on policy.realm_id = observations.realm_id
        and observations.book_close_date >= policy.month_end_date
        and (
            last_seen_open.last_seen_open_at is null
            or observations.observed_at > last_seen_open.last_seen_open_at
        )
    group by policy.realm_id, policy.month_end_date
),

observed as (
    select
        policy.*,
        last_seen_open.last_seen_open_at,
        first_seen_closed.first_seen_closed_at,
        coalesce(
            last_seen_open.last_seen_open_at >= policy.policy_closed_at
            or first_seen_closed.first_seen_closed_at < policy.policy_closed_at,
            false
        ) as contradicts_policy
    from policy
    left join last_seen_open
        on policy.realm_id = last_seen_open.realm_id and policy.month_end_date = last_seen_open.month_end_date
    left join first_seen_closed
        on policy.realm_id = first_seen_closed.realm_id
        and policy.month_end_date = first_seen_closed.month_end_date
),

final as (
    select
        realm_id,
        legal_entity,
        month_start_date,
        month_end_date,
        is_closed,
        case
            when not is_closed then null
            when contradicts_policy then first_seen_closed_at
            else policy_closed_at
        end as closed_at,
        case
            when not is_closed then null
            when contradicts_policy then 'observed'
            else 'policy'
        end as closed_at_source,
        policy_closed_at,
        last_seen_open_at,
        first_seen_closed_at,
        book_close_date as latest_book_close_date
    from observed
)

select * from final
