{#- Time tool vs ERP per project and month worked: hours and amounts approved in the time tool
    (approved billable time on T&M projects), pushed to the ERP (TimeActivities) and invoiced
    (invoice time lines), their differences, the exception rules behind them and a status.
    Built from fct_reconciliation_items, so every entry, TimeActivity and invoice time line is
    counted exactly once and the totals equal the facts' totals (singular tests in
    tests/finance/). The PSA holds no actual hours (Kantata serves budgets, milestones and
    assignments, not time), so there is no PSA column. -#}
with items as (
    select * from {{ ref('fct_reconciliation_items') }}
),

projects as (
    select * from {{ ref('dim_projects') }}
),

by_project_month as (
    select
        project_id,
        month_start_date,
        min(currency_code) as currency_code,
        count(distinct currency_code) as currency_count,
        max(case when is_closed_month then 1 else 0 end) = 1 as is_closed_month,
        count(*) as item_count,
        sum(case when reconciliation_status != 'matched' then 1 else 0 end) as differing_item_count,
        sum(case when reconciliation_status = 'unexplained' then 1 else 0 end) as unexplained_item_count,
        sum(case when reconciliation_status = 'explained_by_exception' then 1 else 0 end)
            as explained_item_count,
        sum(case when reconciliation_status = 'not_yet_billed' then 1 else 0 end)
            as not_yet_billed_item_count,
        sum(approved_hours) as approved_hours,
        sum(erp_hours) as erp_hours,
        sum(invoiced_hours) as invoiced_hours,
        sum(approved_amount) as approved_amount,
        sum(erp_amount) as erp_amount,
        sum(invoiced_amount) as invoiced_amount,
        sum(approved_amount_reporting) as approved_amount_reporting,
        sum(erp_amount_reporting) as erp_amount_reporting,
        sum(invoiced_amount_reporting) as invoiced_amount_reporting
    from items
    group by project_id, month_start_date
),

row_codes as (
    select distinct
        items.project_id,
        items.month_start_date,
        exception_rules.rule_code
    from items
    inner join {{ ref('exception_rules') }} as exception_rules
        on ',' || items.exception_rule_codes || ',' like '%,' || exception_rules.rule_code || ',%'
    where items.reconciliation_status = 'explained_by_exception'
),

codes as (
    select
        project_id,
        month_start_date,
        {{ dbt.listagg('rule_code', "','", 'order by rule_code') }} as exception_rule_codes
    from row_codes
    group by project_id, month_start_date
),

final as (
    select
        coalesce(by_project_month.project_id, 'unassigned')
        || ':'
        || cast(by_project_month.month_start_date as {{ dbt.type_string() }})
            as reconciliation_key,
        by_project_month.project_id,
        projects.project_code,
        projects.client_id,
        projects.contract_id,
        projects.legal_entity,
        projects.billing_method,
        by_project_month.month_start_date,
        by_project_month.is_closed_month,
        by_project_month.currency_code,
        by_project_month.currency_count,
        by_project_month.item_count,
        by_project_month.differing_item_count,
        by_project_month.explained_item_count,
        by_project_month.not_yet_billed_item_count,
        by_project_month.unexplained_item_count,
        cast(by_project_month.approved_hours as decimal(12, 4)) as approved_hours,
        cast(by_project_month.erp_hours as decimal(12, 4)) as erp_hours,
        cast(by_project_month.invoiced_hours as decimal(12, 4)) as invoiced_hours,
        cast(by_project_month.approved_hours - by_project_month.erp_hours as decimal(12, 4))
            as hours_not_in_erp,
        cast(by_project_month.erp_hours - by_project_month.invoiced_hours as decimal(12, 4))
            as hours_not_invoiced,
        cast(by_project_month.approved_amount as decimal(24, 8)) as approved_amount,
        cast(by_project_month.erp_amount as decimal(24, 8)) as erp_amount,
        cast(by_project_month.invoiced_amount as decimal(18, 2)) as invoiced_amount,
        cast(by_project_month.approved_amount - by_project_month.erp_amount as decimal(24, 8))
            as amount_not_in_erp,
        cast(by_project_month.erp_amount - by_project_month.invoiced_amount as decimal(24, 8))
            as amount_not_invoiced,
        cast(by_project_month.approved_amount_reporting as decimal(24, 8)) as approved_amount_reporting,
        cast(by_project_month.erp_amount_reporting as decimal(24, 8)) as erp_amount_reporting,
        cast(by_project_month.invoiced_amount_reporting as decimal(24, 8)) as invoiced_amount_reporting,
        codes.exception_rule_codes,
        case
            when by_project_month.unexplained_item_count > 0 then 'unexplained'
            when by_project_month.explained_item_count > 0 then 'explained_by_exception'
            when by_project_month.not_yet_billed_item_count > 0 then 'not_yet_billed'
            else 'matched'
        end as reconciliation_status
    from by_project_month
    left join projects on by_project_month.project_id = projects.project_id
    left join codes
        on by_project_month.project_id is not distinct from codes.project_id
        and by_project_month.month_start_date = codes.month_start_date
)

select * from final
