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
    A date after the warehouse's now (now, default ref('int_as_of')) is refused: the query
    fails with "wip_as_of(2026-12-06): the warehouse's now is 2025-02-10 12:00; ask for a date
    on or before it" (items not yet known to the warehouse would otherwise be aged by the gap,
    silently). Any date on or before now's date is answered.
    Example (dbt show, any date up to now):
      dbt show --inline "{{ wip_as_of(\"select date '2025-02-10' as as_of_date\") }}" -#}
{% macro wip_as_of(as_of_dates, items=none, now=none) -%}
{%- set items_relation = items if items is not none else ref('int_wip_items') -%}
{%- set now_relation = now if now is not none else ref('int_as_of') -%}
with wip_as_of_dates as (
    {{ wip_dates_up_to_now(as_of_dates, now_relation) | indent(4) }}
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
    in any copy of the file. Like the dbt macro it refuses a date after the warehouse's now
    (intermediate.int_as_of), with an error naming that now. Other engines get no such function
    (use the dbt macro). -#}
{% macro create_wip_as_of_function() -%}
{%- if target.type == 'duckdb' -%}
{%- set as_of_dates = "select cast(as_of as date) as as_of_date" -%}
{%- set now_relation = ref('int_as_of').include(database=false) -%}
create or replace macro {{ this.schema }}.wip_as_of(as_of) as table
select * from (
{{ wip_as_of(as_of_dates, items=ref('int_wip_items').include(database=false), now=now_relation) }}
) as wip
-- the dates once more, on their own: the refusal must not depend on the join plan above (an
-- inner join whose other side is empty may never evaluate the dates: seen in DuckDB 2.0 on a
-- small example, not on this query today)
union all by name
select checked.as_of_date from (
{{ wip_dates_up_to_now(as_of_dates, now_relation) }}
) as checked
where checked.as_of_date is null
{% else -%}
select 1
{%- endif %}
{%- endmacro %}


{#- The given dates (a relation or a SQL string with a column as_of_date), each checked against
    the warehouse's now (now_relation: as_of_at, as_of_date; one row): a date after now's date
    fails the query with a message naming the now, any other passes unchanged. -#}
{% macro wip_dates_up_to_now(as_of_dates, now_relation) -%}
select
    case
        when given_dates.as_of_date > warehouse_now.as_of_date
            then {{ raise_error(dbt.concat([
                "'wip_as_of('",
                dbt.cast('given_dates.as_of_date', dbt.type_string()),
                "'): the warehouse" ~ dbt.escape_single_quotes("'") ~ "s now is '",
                'substring(' ~ dbt.cast('warehouse_now.as_of_at', dbt.type_string()) ~ ', 1, 16)',
                "'; ask for a date on or before it'",
            ]), 'date') }}
        else given_dates.as_of_date
    end as as_of_date
from {% if as_of_dates is string %}({{ as_of_dates }}){% else %}{{ as_of_dates }}{% endif %} as given_dates
cross join {{ now_relation }} as warehouse_now
{%- endmacro %}


{#- An expression that fails the query with `message` (a SQL string expression) when evaluated;
    its type is `data_type` where the engine needs one, so it can stand in a CASE branch:
      case when <bad> then {{ raise_error("'bad: ' || x", 'date') }} else d end
    DuckDB error(), Spark raise_error(); elsewhere (PostgreSQL: no SQL-level raise) the message
    cast to data_type, which fails with the message quoted in the engine's error. -#}
{% macro raise_error(message, data_type) -%}
{{ return(adapter.dispatch('raise_error', 'billable')(message, data_type)) }}
{%- endmacro %}

{% macro duckdb__raise_error(message, data_type) -%}
error({{ message }})
{%- endmacro %}

{% macro spark__raise_error(message, data_type) -%}
raise_error({{ message }})
{%- endmacro %}

{% macro default__raise_error(message, data_type) -%}
cast({{ message }} as {{ data_type }})
{%- endmacro %}
