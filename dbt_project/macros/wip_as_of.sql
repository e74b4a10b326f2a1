{#- Work in progress as of any set of dates, from intermediate.int_wip_items: the one
    definition behind rpt_wip. as_of_dates is a relation or a subquery with a column
    as_of_date (a date); WIP as of D is judged at the end of D:
      in WIP    work_date <= D, approved (completed, for milestones) on or before D, and not
                invoiced on or before D (invoiced_date null or after D)
      at risk   billable T&M time worked and recorded on or before D, not rejected now, not
                approved by D and not invoiced by D (beside WIP, never in it)
    aged by D - work_date in days: 0-30, 31-60, 61-90, 90+. One row per as-of date, project,
    aging bucket and transaction currency (project attributes are the project's current ones).
    items defaults to ref('int_wip_items'); as_of_dates may be a ref() or a SQL string.
    Example (dbt show, any date):
      dbt show --inline "{{ wip_as_of(\"select date '2025-03-15' as as_of_date\") }}" -#}
{% macro wip_as_of(as_of_dates, items=none) -%}
{%- set items_relation = items if items is not none else ref('int_wip_items') -%}
with wip_as_of_dates as (
    select given_dates.as_of_date
    from {% if as_of_dates is string %}({{ as_of_dates }}){% else %}{{ as_of_dates }}{% endif %} as given_dates
),

wip_items as (
    select * from {{ items_relation }}
    where is_wip_candidate or is_at_risk_candidate
),

wip_item_states as (
    select
        wip_as_of_dates.as_of_date,
        wip_items.item_type,
        wip_items.item_id,
        wip_items.project_id,
        wip_items.client_id,
        wip_items.contract_id,
        wip_items.legal_entity,
        wip_items.practice,
        wip_items.billing_method,
        wip_items.currency_code,
        wip_items.hours,
        wip_items.amount,
        wip_items.amount_reporting,
        {{ dbt.datediff('wip_items.work_date', 'wip_as_of_dates.as_of_date', 'day') }} as age_days,
        wip_items.is_wip_candidate and wip_items.wip_from_date <= wip_as_of_dates.as_of_date as is_in_wip,
        wip_items.is_at_risk_candidate
            and wip_items.recorded_date <= wip_as_of_dates.as_of_date
            and (wip_items.wip_from_date is null or wip_items.wip_from_date > wip_as_of_dates.as_of_date)
            as is_at_risk
    from wip_items
    inner join wip_as_of_dates
        on wip_items.work_date <= wip_as_of_dates.as_of_date
        and (wip_items.invoiced_date is null or wip_items.invoiced_date > wip_as_of_dates.as_of_date)
),

wip_bucketed as (
    select
        *,
        case
            when age_days <= 30 then '0-30'
            when age_days <= 60 then '31-60'
            when age_days <= 90 then '61-90'
            else '90+'
        end as aging_bucket,
        case
            when age_days <= 30 then 1
            when age_days <= 60 then 2
            when age_days <= 90 then 3
            else 4
        end as aging_bucket_order
    from wip_item_states
    where is_in_wip or is_at_risk
)

select
    wip_bucketed.as_of_date,
    wip_bucketed.project_id,
    wip_bucketed.aging_bucket,
    wip_bucketed.currency_code,
    max(wip_bucketed.aging_bucket_order) as aging_bucket_order,
    max(wip_bucketed.client_id) as client_id,
    max(wip_bucketed.contract_id) as contract_id,
    max(wip_bucketed.legal_entity) as legal_entity,
    max(wip_bucketed.practice) as practice,
    max(wip_bucketed.billing_method) as billing_method,
    cast(sum(case when is_in_wip and item_type = 'time' then hours else 0 end) as decimal(14, 4)) as wip_hours,
    cast(sum(case when is_in_wip and item_type = 'time' and amount is null then hours else 0 end) as decimal(14, 4))
        as unpriced_wip_hours,
    cast(sum(case when is_in_wip and item_type = 'time' then coalesce(amount, 0) else 0 end) as decimal(24, 8))
        as wip_time_amount,
    cast(sum(case when is_in_wip and item_type = 'expense' then amount else 0 end) as decimal(24, 8))
        as wip_expense_amount,
    cast(sum(case when is_in_wip and item_type = 'milestone' then amount else 0 end) as decimal(24, 8))
        as wip_milestone_amount,
    cast(sum(case when is_in_wip then coalesce(amount, 0) else 0 end) as decimal(24, 8)) as wip_amount,
    cast(sum(case when is_in_wip then amount_reporting else 0 end) as decimal(24, 8)) as wip_amount_reporting,
    cast(sum(case when is_in_wip and item_type = 'time' then amount_reporting else 0 end) as decimal(24, 8))
        as wip_time_amount_reporting,
    cast(sum(case when is_in_wip and item_type = 'expense' then amount_reporting else 0 end) as decimal(24, 8))
        as wip_expense_amount_reporting,
    cast(sum(case when is_in_wip and item_type = 'milestone' then amount_reporting else 0 end) as decimal(24, 8))
        as wip_milestone_amount_reporting,
    sum(case when is_in_wip then 1 else 0 end) as wip_item_count,
    cast(sum(case when is_at_risk then hours else 0 end) as decimal(14, 4)) as at_risk_hours,
    cast(sum(case when is_at_risk then coalesce(amount, 0) else 0 end) as decimal(24, 8)) as at_risk_amount,
    cast(sum(case when is_at_risk then amount_reporting else 0 end) as decimal(24, 8)) as at_risk_amount_reporting,
    sum(case when is_at_risk then 1 else 0 end) as at_risk_entry_count
from wip_bucketed
group by wip_bucketed.as_of_date, wip_bucketed.project_id, wip_bucketed.aging_bucket, wip_bucketed.currency_code
{%- endmacro %}


{#- Publishes the same definition inside the warehouse as a DuckDB table macro,
    <schema>.wip_as_of(as_of), so a reader of the published file (an analyst, the dashboard)
    gets WIP as of any date without dbt:
      select * from marts.wip_as_of(date '2025-03-15')      -- or marts.wip_as_of(?) with a parameter
    Run as rpt_wip's post-hook. The items table is named without its catalog, so the macro works
    in any copy of the file. Other engines get no such function (use the dbt macro). -#}
{% macro create_wip_as_of_function() -%}
{%- if target.type == 'duckdb' -%}
create or replace macro {{ this.schema }}.wip_as_of(as_of) as table
{{ wip_as_of("select cast(as_of as date) as as_of_date", items=ref('int_wip_items').include(database=false)) }}
{%- else -%}
select 1
{%- endif %}
{%- endmacro %}
