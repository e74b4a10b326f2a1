{#- The exception queue: every open exception as of this build (the warehouse's now), one row
    per rule and record, with the owning team, severity and whether it holds the record back
    from billing. Each rule is its own model in intermediate/exceptions/; they all yield the
    same columns (macro exception_columns). int_exceptions_unioned has every rule but
    RECON_MISMATCH, which needs the blocking set built from the others and joins here.

    is_blocking is per row: the rule blocks (seed exception_rules.is_blocking) and so does the
    row (is_record_blocking; TIME_NO_RATE only on time and materials).
    business_age_days: whole days from the record's own date (occurred_on: day worked, first
    effective day, account creation, ...) to the warehouse's now; the age since first detection
    is exception_history's (rpt_exception_aging has both).
    amount_at_stake_reporting: what the exception is about in money, reporting currency, so the
    queue sorts by it: a time entry's value at its bill rate; a time-tool user's live,
    uninvoiced time at the bill rate; a billable line's amount. Null where nothing can value
    it (no rate, a rate-card version, a CRM account). -#}
with other_rules as (
    select * from {{ ref('int_exceptions_unioned') }}
),

recon_mismatch as (
    select * from {{ ref('int_exceptions__recon_mismatch') }}
),

rules as (
    select * from {{ ref('exception_rules') }}
),

time_entries as (
    -- only the columns read: the CTE is read twice, and DuckDB materialises such a CTE whole
    select
        time_entry_id,
        time_user_id,
        bill_amount_reporting,
        is_billable,
        is_invoiced
    from {{ ref('fct_time_entries') }}
),

billable_lines as (
    select * from {{ ref('int_billable_lines') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

unioned as (
    select * from other_rules
    union all
    select * from recon_mismatch
),

-- a time-tool user's time the warehouse can value and has not invoiced yet
user_values as (
    select
        cast(time_user_id as {{ dbt.type_string() }}) as time_user_id,
        sum(bill_amount_reporting) as amount_reporting
    from time_entries
    where is_billable and not is_invoiced
    group by time_user_id
),

valued as (
    select
        unioned.*,
        case
            when unioned.record_type = 'time_entry' then time_entries.bill_amount_reporting
            when unioned.record_type = 'time_user' then user_values.amount_reporting
            when unioned.record_type = 'billable_line' then billable_lines.amount_reporting
        end as amount_at_stake_reporting
    from unioned
    left join time_entries
        on unioned.record_type = 'time_entry' and unioned.time_entry_id = time_entries.time_entry_id
    left join user_values
        on unioned.record_type = 'time_user' and unioned.record_id = user_values.time_user_id
    left join billable_lines
        on unioned.record_type = 'billable_line' and unioned.record_id = billable_lines.line_key
),

-- a left join: a rule code missing from the seed must fail a test, not vanish from the queue
final as (
    select
        valued.exception_id,
        valued.rule_code,
        rules.owner,
        rules.severity,
        coalesce(rules.is_blocking, false) and valued.is_record_blocking as is_blocking,
        valued.record_type,
        valued.record_id,
        valued.source_system,
        valued.source_ids,
        valued.reason,
        rules.reason as rule_reason,
        valued.details,
        valued.occurred_on,
        {{ dbt.datediff('valued.occurred_on', 'as_of.as_of_date', 'day') }} as business_age_days,
        cast(valued.amount_at_stake_reporting as decimal(24, 8)) as amount_at_stake_reporting,
        valued.time_entry_id,
        valued.project_id,
        valued.client_id,
        valued.employee_id,
        valued.legal_entity,
        as_of.as_of_at as detected_at
    from valued
    left join rules on valued.rule_code = rules.rule_code
    cross join as_of
)

select * from final
