{#- Weighted pipeline spread over time: one row per open CRM opportunity (not closed) and
    calendar day of its expected delivery.
      weighted_amount  amount x the CRM's own win probability (Salesforce `Probability`, percent;
                       the stage's default probability unless the owner changed it)
      period           from the close date (the day after the as-of date when the close date has
                       passed and the opportunity is still open) for duration_days calendar days:
                       the mean length (end - start + 1) of the contracts won from opportunities
                       of the same practice, else of all such contracts, else var
                       pipeline_default_duration_days (90)
      per day          weighted_amount / duration_days, evenly
      hours            the day's weighted amount / the practice's mean bill rate on billable time
                       to date (reporting currency per hour; the firm's when the practice has no
                       billed time): demand in hours for the practice's people. Null when no
                       rate is known at all, never 0.
    Money is converted to the reporting currency at the as-of date's rate. -#}
with opportunities as (
    select * from {{ ref('stg_crm__opportunities') }}
),

contracts as (
    select * from {{ ref('dim_contracts') }}
),

time_entries as (
    select * from {{ ref('fct_time_entries') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

won_durations as (
    select
        contracts.practice,
        {{ dbt.datediff('contracts.start_date', 'contracts.end_date', 'day') }} + 1 as duration_days
    from contracts
    where contracts.opportunity_id is not null
        and contracts.start_date is not null
        and contracts.end_date >= contracts.start_date
),

practice_durations as (
    select
        practice,
        avg(duration_days) as mean_duration_days
    from won_durations
    group by practice
),

firm_duration as (
    select avg(duration_days) as mean_duration_days from won_durations
),

billed_time as (
    select
        time_entries.practice,
        time_entries.hours,
        time_entries.bill_amount_reporting
    from time_entries
    cross join horizon
    where time_entries.is_billable
        and time_entries.hours > 0
        and time_entries.bill_amount_reporting > 0
        and time_entries.spent_date <= horizon.as_of_date
),

practice_rates as (
    select
        practice,
        {{ double_to_decimal(divide('sum(bill_amount_reporting)', 'sum(hours)'), 18, 6) }}
            as mean_bill_rate_reporting
    from billed_time
    group by practice
),

firm_rate as (
    select
        {{ double_to_decimal(divide('sum(bill_amount_reporting)', 'sum(hours)'), 18, 6) }}
            as mean_bill_rate_reporting
    from billed_time
),

open_opportunities as (
    select
        opportunities.opportunity_id,
        opportunities.account_id as client_id,
        opportunities.opportunity_name,
        opportunities.stage_name,
        opportunities.practice,
        opportunities.billing_method,
        opportunities.close_date,
        opportunities.currency_code,
        opportunities.amount,
        opportunities.probability,
        cast(opportunities.amount * opportunities.probability / 100 as decimal(24, 8)) as weighted_amount,
        case
            when opportunities.close_date > horizon.as_of_date then opportunities.close_date
            else horizon.first_forecast_date
        end as delivery_start_date,
        cast(
            round(coalesce(
                practice_durations.mean_duration_days,
                firm_duration.mean_duration_days,
                {{ var('pipeline_default_duration_days', 90) }}
            ), 0) as integer
        ) as duration_days,
        coalesce(practice_rates.mean_bill_rate_reporting, firm_rate.mean_bill_rate_reporting)
            as mean_bill_rate_reporting,
        fx.rate_to_reporting as fx_rate_to_reporting,
        horizon.horizon_end_date
    from opportunities
    cross join horizon
    cross join firm_duration
    cross join firm_rate
    left join practice_durations on opportunities.practice = practice_durations.practice
    left join practice_rates on opportunities.practice = practice_rates.practice
    left join fx_rates as fx
        on opportunities.currency_code = fx.currency_code
        and horizon.as_of_date = fx.rate_date
    where not opportunities.is_closed
        and opportunities.amount is not null
        and opportunities.probability is not null
),

spread as (
    select
        open_opportunities.*,
        dates.date_day,
        dates.week_start_date,
        dates.month_start_date,
        cast(open_opportunities.weighted_amount / open_opportunities.duration_days as decimal(24, 8))
            as daily_weighted_amount
    from open_opportunities
    inner join dates
        on dates.date_day >= open_opportunities.delivery_start_date
        and dates.date_day
        < {{ dbt.dateadd(
            'day', 'open_opportunities.duration_days', 'open_opportunities.delivery_start_date'
        ) }}
),

final as (
    select
        opportunity_id || ':' || cast(date_day as {{ dbt.type_string() }}) as opportunity_day_id,
        opportunity_id,
        client_id,
        opportunity_name,
        stage_name,
        practice,
        billing_method,
        close_date,
        delivery_start_date,
        duration_days,
        date_day,
        week_start_date,
        month_start_date,
        date_day <= horizon_end_date as is_in_horizon,
        currency_code,
        amount,
        probability,
        weighted_amount,
        daily_weighted_amount,
        fx_rate_to_reporting,
        cast(daily_weighted_amount * fx_rate_to_reporting as decimal(24, 8))
            as daily_weighted_amount_reporting,
        mean_bill_rate_reporting,
        cast(
            {{ divide('daily_weighted_amount * fx_rate_to_reporting', 'mean_bill_rate_reporting') }}
            as decimal(18, 6)
        ) as daily_weighted_hours
    from spread
)

select * from final
