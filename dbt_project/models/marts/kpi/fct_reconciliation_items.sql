{#- The records behind rpt_reconciliation, one row per item: a time entry (approved billable
    T&M time, or any entry an ERP TimeActivity or invoice line claims), an ERP TimeActivity
    whose time entry the time tool does not have, or an invoiced time line with no
    TimeActivity. For each: hours and amounts approved in the time tool, pushed to the ERP
    (every TimeActivity claiming it) and invoiced (every time line billing it), the exception
    rules that hold or flag it, and a status:
      matched                 approved = pushed = invoiced, hours and amounts (to the cent)
      explained_by_exception  differs, and the entry carries an exception (fct_exceptions, or
                              a blocking rule of its user or rate card)
      not_yet_billed          differs only because billing is not due yet: not pushed and not
                              invoiced in a month whose books are still open, or pushed whole
                              but not invoiced, in such a month or posted after the last
                              billing
      unexplained             anything else
    "Closed month" is RECON_MISMATCH's: the month is closed in the ERP realm of the item's
    legal entity (the project's, else the realm the TimeActivity was posted in;
    int_period_closes.is_closed). A closed month's approved time that never reached the ERP
    is a RECON_MISMATCH (or held back by a blocking exception), never "not yet billed", even
    when nothing of that month was ever billed. -#}
with entries as (
    select * from {{ ref('fct_time_entries') }}
),

activities as (
    select * from {{ ref('stg_erp__time_activities') }}
),

invoice_lines as (
    select * from {{ ref('fct_invoice_lines') }}
    where line_kind = 'time'
),

exceptions as (
    select * from {{ ref('fct_exceptions') }}
),

exception_rules as (
    select * from {{ ref('exception_rules') }}
),

erp_project_ids as (
    select * from {{ ref('int_project_source_ids') }}
    where source_system = 'erp'
),

projects as (
    select * from {{ ref('dim_projects') }}
),

legal_entities as (
    select * from {{ ref('dim_legal_entities') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

period_closes as (
    select * from {{ ref('int_period_closes') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

-- the latest invoice of time dated by now: a line posted after it cannot have been billed yet
last_billing as (
    select max(invoice_lines.invoice_date) as last_time_invoice_date
    -- the tables, not the CTEs: a CTE read twice is materialised whole by DuckDB
    from {{ ref('fct_invoice_lines') }} as invoice_lines
    inner join {{ ref('stg_erp__time_activities') }} as time_activities
        on invoice_lines.erp_time_activity_key = time_activities.erp_time_activity_key
    cross join as_of
    where invoice_lines.invoice_date <= as_of.as_of_date
),

activities_attributed as (
    select
        activities.*,
        case
            when
                entries.time_entry_id is not null
                then 'time_entry:' || cast(entries.time_entry_id as {{ dbt.type_string() }})
            else 'erp_time_activity:' || activities.erp_time_activity_key
        end as item_key,
        erp_project_ids.project_id
    from activities
    left join entries on activities.time_entry_id = entries.time_entry_id
    left join erp_project_ids
        on activities.realm_id || ':' || activities.erp_customer_id = erp_project_ids.source_id
),

lines_attributed as (
    select
        invoice_lines.*,
        coalesce(
            activities_attributed.item_key, 'erp_invoice_line:' || invoice_lines.erp_invoice_line_key
        ) as item_key
    from invoice_lines
    left join activities_attributed
        on invoice_lines.erp_time_activity_key = activities_attributed.erp_time_activity_key
),

pushed as (
    select
        item_key,
        count(*) as erp_time_activity_count,
        min(realm_id) as realm_id,
        min(project_id) as project_id,
        min(txn_date) as txn_date,
        max(created_at) as last_posted_at,
        sum(hours) as erp_hours,
        sum(hours * hourly_rate) as erp_amount
    from activities_attributed
    group by item_key
),

invoiced as (
    select
        item_key,
        count(*) as invoice_line_count,
        min(project_id) as project_id,
        min(currency_code) as currency_code,
        min(coalesce(service_date, invoice_date)) as service_date,
        sum(quantity) as invoiced_hours,
        sum(amount) as invoiced_amount,
        sum(amount_reporting) as invoiced_amount_reporting
    from lines_attributed
    group by item_key
),

approved as (
    select
        'time_entry:' || cast(entries.time_entry_id as {{ dbt.type_string() }}) as item_key,
        entries.*,
        entries.is_billable
        and entries.is_approved
        and entries.billing_method = 'time_and_materials'
        and entries.approved_at <= as_of.as_of_at as is_approved_billable_time
    from entries
    cross join as_of
),

item_keys as (
    select item_key from approved
    where is_approved_billable_time
    union
    select item_key from pushed
    union
    select item_key from invoiced
),

entry_rule_codes as (
    select
        exceptions.time_entry_id,
        exceptions.rule_code
    from exceptions
    where exceptions.time_entry_id is not null
    union
    -- blocking rules of the entry's user (unknown employee) and rate card (conflict)
    select
        entries.time_entry_id,
        exception_rules.rule_code
    from entries
    inner join exception_rules
        on ',' || entries.blocking_rule_codes || ',' like '%,' || exception_rules.rule_code || ',%'
),

entry_exceptions as (
    select
        time_entry_id,
        {{ dbt.listagg('rule_code', "','", 'order by rule_code') }} as exception_rule_codes
    from entry_rule_codes
    group by time_entry_id
),

items as (
    select
        item_keys.item_key,
        case
            when approved.time_entry_id is not null then 'time_entry'
            when pushed.item_key is not null then 'erp_time_activity'
            else 'erp_invoice_line'
        end as item_type,
        approved.time_entry_id,
        coalesce(approved.project_id, pushed.project_id, invoiced.project_id) as project_id,
        coalesce(approved.spent_date, pushed.txn_date, invoiced.service_date) as work_date,
        coalesce(
            approved.currency_code,
            invoiced.currency_code,
            projects.currency_code,
            legal_entities.erp_home_currency_code
        )
            as currency_code,
        coalesce(approved.is_approved_billable_time, false) as is_approved_billable_time,
        coalesce(approved.is_known_employee, false) as is_known_employee,
        coalesce(projects.legal_entity, legal_entities.legal_entity) as legal_entity,
        approved.hours as time_tool_hours,
        case when approved.is_approved_billable_time then approved.hours else 0 end as approved_hours,
        case when approved.is_approved_billable_time then coalesce(approved.bill_amount, 0) else 0 end
            as approved_amount,
        case
            when approved.is_approved_billable_time then coalesce(approved.bill_amount_reporting, 0) else 0
        end
            as approved_amount_reporting,
        coalesce(pushed.erp_time_activity_count, 0) as erp_time_activity_count,
        pushed.last_posted_at,
        coalesce(pushed.erp_hours, 0) as erp_hours,
        coalesce(pushed.erp_amount, 0) as erp_amount,
        coalesce(invoiced.invoice_line_count, 0) as invoice_line_count,
        coalesce(invoiced.invoiced_hours, 0) as invoiced_hours,
        coalesce(invoiced.invoiced_amount, 0) as invoiced_amount,
        coalesce(invoiced.invoiced_amount_reporting, 0) as invoiced_amount_reporting,
        entry_exceptions.exception_rule_codes
    from item_keys
    left join approved on item_keys.item_key = approved.item_key
    left join pushed on item_keys.item_key = pushed.item_key
    left join invoiced on item_keys.item_key = invoiced.item_key
    left join entry_exceptions on approved.time_entry_id = entry_exceptions.time_entry_id
    left join
        projects
        on coalesce(approved.project_id, pushed.project_id, invoiced.project_id) = projects.project_id
    left join legal_entities on pushed.realm_id = legal_entities.erp_realm_id
),

compared as (
    select
        items.*,
        cast({{ dbt.date_trunc('month', 'items.work_date') }} as date) as month_start_date,
        cast(items.erp_amount * fx_rates.rate_to_reporting as decimal(24, 8)) as erp_amount_reporting,
        items.approved_hours != items.erp_hours
        or round(items.approved_amount - items.erp_amount, 2) != 0 as differs_time_tool_erp,
        items.erp_hours != items.invoiced_hours
        or round(items.erp_amount, 2) != items.invoiced_amount as differs_erp_invoice,
        coalesce(period_closes.is_closed, false) as is_closed_month,
        coalesce(items.last_posted_at > cast(last_billing.last_time_invoice_date as timestamp), false)
            as is_posted_after_last_billing
    from items
    cross join last_billing
    left join period_closes
        on items.legal_entity = period_closes.legal_entity
        and cast({{ dbt.date_trunc('month', 'items.work_date') }} as date) = period_closes.month_start_date
    left join fx_rates
        on items.currency_code = fx_rates.currency_code
        and items.work_date = fx_rates.rate_date
),

final as (
    select
        item_key,
        item_type,
        time_entry_id,
        project_id,
        legal_entity,
        month_start_date,
        work_date,
        currency_code,
        is_approved_billable_time,
        is_known_employee,
        time_tool_hours,
        cast(approved_hours as decimal(12, 4)) as approved_hours,
        cast(approved_amount as decimal(24, 8)) as approved_amount,
        cast(approved_amount_reporting as decimal(24, 8)) as approved_amount_reporting,
        erp_time_activity_count,
        last_posted_at as erp_last_posted_at,
        cast(erp_hours as decimal(12, 4)) as erp_hours,
        cast(erp_amount as decimal(24, 8)) as erp_amount,
        erp_amount_reporting,
        invoice_line_count,
        cast(invoiced_hours as decimal(12, 4)) as invoiced_hours,
        cast(invoiced_amount as decimal(18, 2)) as invoiced_amount,
        cast(invoiced_amount_reporting as decimal(24, 8)) as invoiced_amount_reporting,
        is_closed_month,
        differs_time_tool_erp,
        differs_erp_invoice,
        exception_rule_codes,
        case
            when not differs_time_tool_erp and not differs_erp_invoice then null
            when item_type = 'erp_invoice_line' then 'invoiced time line with no TimeActivity'
            when
                item_type = 'erp_time_activity'
                then 'TimeActivity whose time entry the time tool does not have'
            when
                erp_time_activity_count > 1
                then 'posted to the ERP ' || cast(erp_time_activity_count as {{ dbt.type_string() }})
                    || ' times'
            when not is_approved_billable_time and erp_time_activity_count > 0
                then 'in the ERP but not approved billable T&M time in the time tool'
            when erp_time_activity_count = 0 and approved_hours != 0 then 'approved, never pushed to the ERP'
            when approved_hours != erp_hours then 'ERP hours differ from the time tool'
            when differs_time_tool_erp then 'ERP rate differs from the time tool'
            when invoice_line_count = 0 and erp_hours != 0 then 'pushed, not invoiced'
            when erp_hours != invoiced_hours then 'invoiced hours differ from the ERP'
            when differs_erp_invoice then 'invoiced amount differs from the ERP'
        end as difference_reason,
        case
            when not differs_time_tool_erp and not differs_erp_invoice then 'matched'
            when exception_rule_codes is not null then 'explained_by_exception'
            when item_type = 'time_entry'
                and erp_time_activity_count = 0 and invoice_line_count = 0 and not is_closed_month
                then 'not_yet_billed'
            when item_type = 'time_entry'
                and erp_time_activity_count = 1 and not differs_time_tool_erp and invoice_line_count = 0
                and (not is_closed_month or is_posted_after_last_billing)
                then 'not_yet_billed'
            else 'unexplained'
        end as reconciliation_status
    from compared
)

select * from final
