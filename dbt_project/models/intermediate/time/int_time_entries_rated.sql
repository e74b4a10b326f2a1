{#- Every time entry priced: bill rate, standard value, cost, in transaction and reporting
    currency.
    - Standard rate: the PSA rate-card version of the project's card for the entry's role
      effective on the day worked (effective_from..effective_to inclusive). Exactly one match
      is a rate; none (TIME_NO_RATE) or several (TIME_RATE_CONFLICT) leave it null, never a
      silent pick: matching_rate_count says which.
    - Applied rate: a rate change re-rates only unbilled time, so an entry the ERP has invoiced
      keeps the rate it was invoiced at; others take the standard rate.
    - Cost: hours × the employee's HR cost rate in force that day.
    - FX: the ERP's rate for the day worked (int_fx_rates_daily).
    Amounts are exact products (hours have at most 4 decimals, rates 4): nothing is rounded
    here; rounding to cents is a presentation concern. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

erp as (
    select * from {{ ref('int_time_entries_erp') }}
),

projects as (
    select * from {{ ref('dim_projects') }}
),

rate_cards as (
    select * from {{ ref('stg_psa__rate_cards') }}
),

rate_card_versions as (
    select * from {{ ref('stg_psa__rate_card_versions') }}
),

employees as (
    select * from {{ ref('dim_employees') }}
),

fx as (
    select * from {{ ref('int_fx_rates_daily') }}
),

entry_cards as (
    select
        entries.time_entry_id,
        min(rate_cards.rate_card_id) as rate_card_id,
        count(rate_cards.rate_card_id) as rate_card_count
    from entries
    inner join projects on entries.project_id = projects.project_id
    inner join rate_cards on projects.psa_project_id = rate_cards.psa_project_id
    group by entries.time_entry_id
),

matches as (
    select
        entries.time_entry_id,
        count(rate_card_versions.rate_card_version_id) as matching_rate_count,
        min(rate_card_versions.rate_card_version_id) as rate_card_version_id,
        min(rate_card_versions.bill_rate) as bill_rate,
        min(rate_card_versions.currency_code) as rate_currency_code
    from entries
    inner join entry_cards on entries.time_entry_id = entry_cards.time_entry_id
    inner join rate_card_versions
        on entry_cards.rate_card_id = rate_card_versions.rate_card_id
        and entries.rate_role = rate_card_versions.role
        and entries.spent_date >= rate_card_versions.effective_from
        and (rate_card_versions.effective_to is null or entries.spent_date <= rate_card_versions.effective_to)
    group by entries.time_entry_id
),

priced as (
    select
        entries.time_entry_id,
        entry_cards.rate_card_id,
        coalesce(matches.matching_rate_count, 0) as matching_rate_count,
        case when matches.matching_rate_count = 1 then matches.rate_card_version_id end as rate_card_version_id,
        case when matches.matching_rate_count = 1 then matches.bill_rate end as standard_bill_rate,
        case when matches.matching_rate_count = 1 then matches.rate_currency_code end as standard_rate_currency_code,
        coalesce(erp.is_invoiced, false) as is_invoiced,
        erp.erp_hourly_rate,
        erp.invoice_currency_code,
        entries.hours,
        entries.spent_date,
        entries.employee_id,
        entries.functional_currency
    from entries
    left join entry_cards on entries.time_entry_id = entry_cards.time_entry_id
    left join matches on entries.time_entry_id = matches.time_entry_id
    left join erp on entries.time_entry_id = erp.time_entry_id
),

applied as (
    select
        priced.*,
        priced.is_invoiced and priced.erp_hourly_rate is not null as is_rated_from_invoice,
        case
            when priced.is_invoiced and priced.erp_hourly_rate is not null then priced.erp_hourly_rate
            else priced.standard_bill_rate
        end as bill_rate,
        case
            when priced.is_invoiced and priced.erp_hourly_rate is not null
                then coalesce(priced.invoice_currency_code, priced.standard_rate_currency_code, priced.functional_currency)
            else priced.standard_rate_currency_code
        end as currency_code
    from priced
),

costed as (
    select
        applied.*,
        employees.hourly_cost as cost_rate,
        employees.cost_currency_code
    from applied
    left join employees
        on applied.employee_id = employees.employee_id
        and applied.spent_date >= employees.valid_from
        and (employees.valid_to is null or applied.spent_date < employees.valid_to)
),

final as (
    select
        costed.time_entry_id,
        costed.rate_card_id,
        costed.matching_rate_count,
        costed.rate_card_version_id,
        costed.standard_bill_rate,
        costed.bill_rate,
        costed.is_rated_from_invoice,
        costed.currency_code,
        {{ exact_product('costed.hours', 'costed.bill_rate') }} as bill_amount,
        {{ exact_product('costed.hours', 'costed.standard_bill_rate') }} as standard_amount,
        bill_fx.rate_to_reporting as fx_rate_to_reporting,
        {{ converted(exact_product('costed.hours', 'costed.bill_rate'), 'bill_fx.rate_to_reporting') }}
            as bill_amount_reporting,
        {{ converted(exact_product('costed.hours', 'costed.standard_bill_rate'), 'bill_fx.rate_to_reporting') }}
            as standard_amount_reporting,
        costed.cost_rate,
        costed.cost_currency_code,
        {{ exact_product('costed.hours', 'costed.cost_rate') }} as cost_amount,
        {{ converted(exact_product('costed.hours', 'costed.cost_rate'), 'cost_fx.rate_to_reporting') }}
            as cost_amount_reporting
    from costed
    left join fx as bill_fx
        on costed.currency_code = bill_fx.currency_code and costed.spent_date = bill_fx.rate_date
    left join fx as cost_fx
        on costed.cost_currency_code = cost_fx.currency_code and costed.spent_date = cost_fx.rate_date
)

select * from final
