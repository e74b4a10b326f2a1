{#- When each month's books closed, per realm. QuickBooks serves only the current close date,
    so closes before the first load are dated by the finance close policy (vars
    period_close_working_day, period_close_hour_utc); where the loads' own observations
    (stg_erp__preferences_history) saw a month still open after that moment, the first
    observation showing it closed dates the close instead. -#}
with preferences as (
    select * from {{ ref('stg_erp__preferences') }}
),

observations as (
    select * from {{ ref('stg_erp__preferences_history') }}
),

legal_entities as (
    select * from {{ ref('legal_entities') }}
),

working_days as (
    select * from {{ ref('int_legal_entity_working_days') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

months as (
    select distinct month_start_date, month_end_date from dates
),

realm_months as (
    select
        legal_entities.erp_realm_id as realm_id,
        legal_entities.legal_entity,
        months.month_start_date,
        months.month_end_date,
        preferences.book_close_date
    from legal_entities
    inner join preferences on legal_entities.erp_realm_id = preferences.realm_id
    cross join months
    where months.month_end_date <= preferences.book_close_date
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
        and close_day.working_day_number = month_end_day.working_day_number + {{ var('period_close_working_day') }}
        and close_day.is_working_day
),

observed as (
    select
        policy.realm_id,
        policy.month_end_date,
        max(case when observations.book_close_date < policy.month_end_date
            and observations.observed_at > policy.policy_closed_at then observations.observed_at end)
            as seen_open_after_policy_at,
        min(case when observations.book_close_date >= policy.month_end_date then observations.observed_at end)
            as first_seen_closed_at
    from policy
    inner join observations on policy.realm_id = observations.realm_id
    group by policy.realm_id, policy.month_end_date
),

final as (
    select
        policy.realm_id,
        policy.legal_entity,
        policy.month_start_date,
        policy.month_end_date,
        case
            when observed.seen_open_after_policy_at is not null then observed.first_seen_closed_at
            else policy.policy_closed_at
        end as closed_at,
        case when observed.seen_open_after_policy_at is not null then 'observed' else 'policy' end
            as closed_at_source
    from policy
    left join observed
        on policy.realm_id = observed.realm_id and policy.month_end_date = observed.month_end_date
)

select * from final
