{#- Forecast accuracy: one row per month now closed (before the as-of month) and lead time
    (4, 8 and 12 weeks), firm-wide, setting the forecast kept in rpt_forecast_snapshots against what
    happened. The forecast used is the latest snapshot taken at least lead_weeks x 7 days before
    the month's first day, and no more than 14 days earlier than that (~4, 8, 12 weeks); a month
    with no such snapshot has a row with null forecasts (has_snapshot false), never 0.
      forecast_revenue   contracted + weighted pipeline forecast for the month, as then
      actual_revenue     rpt_revenue's recognised revenue of the month, as now
      forecast_billable_utilization  billable assigned hours / capacity, as then
      actual_billable_utilization    rpt_utilization: billable hours / capacity, as now -#}
with snapshots as (
    select * from {{ ref('rpt_forecast_snapshots') }}
),

revenue as (
    select * from {{ ref('rpt_revenue') }}
),

utilization as (
    select * from {{ ref('rpt_utilization') }}
),

horizon as (
    select * from {{ ref('int_forecast_horizon') }}
),

leads as (
    select 4 as lead_weeks
    union all
    select 8 as lead_weeks
    union all
    select 12 as lead_weeks
),

actual_revenue as (
    select
        month_start_date,
        {{ known_sum('recognized_amount_reporting') }} as actual_revenue_reporting
    from revenue
    group by month_start_date
),

actual_utilization as (
    select
        month_start_date,
        sum(billable_hours) as billable_hours,
        sum(capacity_hours) as capacity_hours
    from utilization
    group by month_start_date
),

snapshot_months as (
    select
        snapshot_as_of_date,
        month_start_date,
        -- unknown when any practice's part is (kept null in the snapshot: no exchange rate)
        {{ known_sum('contracted_forecast_amount_reporting + pipeline_forecast_amount_reporting') }}
            as forecast_revenue_reporting,
        {{ known_sum('contracted_forecast_amount_reporting') }} as contracted_forecast_amount_reporting,
        {{ known_sum('pipeline_forecast_amount_reporting') }} as pipeline_forecast_amount_reporting,
        sum(billable_assigned_hours) as billable_assigned_hours,
        sum(capacity_hours) as capacity_hours
    from snapshots
    group by snapshot_as_of_date, month_start_date
),

target_months as (
    select
        actual_revenue.month_start_date,
        leads.lead_weeks,
        cast({{ dbt.dateadd('day', '-7 * leads.lead_weeks', 'actual_revenue.month_start_date') }} as date)
            as latest_snapshot_date,
        cast(
            {{ dbt.dateadd('day', '-7 * leads.lead_weeks - 14', 'actual_revenue.month_start_date') }} as date
        )
            as earliest_snapshot_date
    from actual_revenue
    cross join leads
    cross join horizon
    where actual_revenue.month_start_date < horizon.as_of_month_start_date
),

chosen as (
    select
        target_months.month_start_date,
        target_months.lead_weeks,
        max(snapshot_months.snapshot_as_of_date) as snapshot_as_of_date
    from target_months
    inner join snapshot_months
        on target_months.month_start_date = snapshot_months.month_start_date
        and snapshot_months.snapshot_as_of_date <= target_months.latest_snapshot_date
        and snapshot_months.snapshot_as_of_date >= target_months.earliest_snapshot_date
    group by target_months.month_start_date, target_months.lead_weeks
),

final as (
    select
        cast(target_months.month_start_date as {{ dbt.type_string() }}) || ':'
        || cast(target_months.lead_weeks as {{ dbt.type_string() }}) as accuracy_key,
        target_months.month_start_date,
        target_months.lead_weeks,
        chosen.snapshot_as_of_date,
        chosen.snapshot_as_of_date is not null as has_snapshot,
        cast(snapshot_months.forecast_revenue_reporting as decimal(24, 8)) as forecast_revenue_reporting,
        cast(snapshot_months.contracted_forecast_amount_reporting as decimal(24, 8))
            as contracted_forecast_amount_reporting,
        cast(snapshot_months.pipeline_forecast_amount_reporting as decimal(24, 8))
            as pipeline_forecast_amount_reporting,
        cast(actual_revenue.actual_revenue_reporting as decimal(24, 8)) as actual_revenue_reporting,
        cast(
            snapshot_months.forecast_revenue_reporting - actual_revenue.actual_revenue_reporting
            as decimal(24, 8)
        )
            as revenue_error_reporting,
        case when actual_revenue.actual_revenue_reporting != 0
                then {{ double_to_decimal(
                        divide('(snapshot_months.forecast_revenue_reporting - actual_revenue.actual_revenue_reporting)',
                            'actual_revenue.actual_revenue_reporting'),
                        12, 6
                    ) }}
        end as revenue_error_pct,
        case when snapshot_months.capacity_hours > 0
                then {{ double_to_decimal(
                        divide('snapshot_months.billable_assigned_hours', 'snapshot_months.capacity_hours'), 10, 6
                    ) }}
        end as forecast_billable_utilization,
        case when actual_utilization.capacity_hours > 0
                then {{ double_to_decimal(
                        divide('actual_utilization.billable_hours', 'actual_utilization.capacity_hours'), 10, 6
                    ) }}
        end as actual_billable_utilization
    from target_months
    left join chosen
        on target_months.month_start_date = chosen.month_start_date
        and target_months.lead_weeks = chosen.lead_weeks
    left join snapshot_months
        on chosen.snapshot_as_of_date = snapshot_months.snapshot_as_of_date
        and chosen.month_start_date = snapshot_months.month_start_date
    left join actual_revenue on target_months.month_start_date = actual_revenue.month_start_date
    left join actual_utilization on target_months.month_start_date = actual_utilization.month_start_date
)

select * from final
