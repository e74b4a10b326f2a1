{#- Every time entry rated: the bill rate, bill amount and cost, in transaction and reporting
    currency. One row per time entry of int_time_entries_resolved (deleted ones included and
    flagged; the fact drops them).

    Bill rate. The standard rate is the PSA rate-card version of the project's rate card (by PSA
    project, else by contract number) for the entry's rate_role, effective on the day worked
    (effective_from..effective_to inclusive, null effective_to = open). matching_rate_count says
    how many versions match: 0 = no rate, >1 = a conflict; a standard rate is taken only when
    exactly one matches, never a silent pick. "A rate change re-rates only unbilled time": an
    entry invoiced in the ERP keeps the rate it was billed at (the TimeActivity's HourlyRate),
    every other entry takes the standard rate of today's rate card.

    Amounts are exact: hours x rate is kept at 8 decimals (decimal(24, 8)) and converted to the
    reporting currency without rounding to cents, so sums over many entries lose nothing.
    Rounding to cents happens where money leaves the warehouse: on the invoice line the ERP
    writes (ERP amounts, e.g. invoiced_amount, are already cents) and on display.

    Cost. hours x the employee's HR hourly cost of the version covering the day worked, in the
    cost currency, and converted at the ERP rate of that day.

    Follows change (macros/follow_change.sql): a run recomputes only the entries that are new,
    whose resolved row changed (int_time_entries_resolved's fingerprint: the entry, its person
    and their HR versions, its project), or whose project's rate cards, ERP link or day's
    exchange rates changed. -#}
{{ follow_change_config('time_entry_id', 'int_time_entries_resolved') }}
{%- set fingerprints = ['fingerprint_resolved', 'fingerprint_rates', 'fingerprint_erp'] -%}
{%- set incremental = follows_change(fingerprints) -%}
{%- set far_future = "cast('9999-12-31' as date)" -%}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

projects as (
    select * from {{ ref('int_projects') }}
),

rate_cards as (
    select * from {{ ref('stg_psa__rate_cards') }}
),

rate_card_versions as (
    select * from {{ ref('stg_psa__rate_card_versions') }}
),

erp_entries as (
    select * from {{ ref('int_time_entries_erp') }}
),

employees as (
    select * from {{ ref('int_employees') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

-- the project's own rate cards; a project without one takes its contract's
cards_by_project as (
    select
        projects.project_id,
        rate_cards.rate_card_id,
        rate_cards.currency_code
    from projects
    inner join rate_cards on projects.psa_project_id = rate_cards.psa_project_id
),

cards_by_contract as (
    select
        projects.project_id,
        rate_cards.rate_card_id,
        rate_cards.currency_code
    from projects
    inner join rate_cards on projects.contract_number = rate_cards.contract_number
    where projects.project_id not in (select project_id from cards_by_project)
),

project_cards as (
    select * from cards_by_project
    union all
    select * from cards_by_contract
),

-- the inputs of each entry, fingerprinted
employee_costs as (
    select
        employee_id,
        {{ fingerprint_of_rows(['employee_version_id', 'hourly_cost', 'cost_currency_code']) }} as fingerprint
    from employees
    group by employee_id
),

project_rates as (
    select
        project_cards.project_id,
        {{ fingerprint_of_rows([
            'project_cards.rate_card_id', 'project_cards.currency_code', 'rate_card_versions.rate_card_version_id',
            'rate_card_versions.role', 'rate_card_versions.effective_from', 'rate_card_versions.effective_to',
            'rate_card_versions.bill_rate', 'rate_card_versions.currency_code',
        ]) }} as fingerprint
    from project_cards
    left join rate_card_versions on project_cards.rate_card_id = rate_card_versions.rate_card_id
    group by project_cards.project_id
),

day_rates as (
    select
        rate_date,
        {{ fingerprint_of_rows(['currency_code', 'rate_to_reporting']) }} as fingerprint
    from fx_rates
    group by rate_date
),

inputs as (
    select
        entries.time_entry_id,
        entries.fingerprint as fingerprint_resolved,
        {{ fingerprint([
            'employee_costs.fingerprint', 'project_rates.fingerprint', 'day_rates.fingerprint',
        ]) }} as fingerprint_rates,
        {{ fingerprint_of_row(ref('int_time_entries_erp'), 'erp_entries') }} as fingerprint_erp
    -- the tables themselves, not the CTEs above: a CTE read twice is materialised whole by DuckDB
    from {{ ref('int_time_entries_resolved') }} as entries
    left join employee_costs on entries.employee_id = employee_costs.employee_id
    left join project_rates on entries.project_id = project_rates.project_id
    left join day_rates on entries.spent_date = day_rates.rate_date
    left join {{ ref('int_time_entries_erp') }} as erp_entries
        on entries.time_entry_id = erp_entries.time_entry_id
),

{% if incremental -%}
changed as (
    {{ changed_keys('inputs', 'time_entry_id', fingerprints) }}
),

{% endif -%}
-- the entries this run computes
entries_to_rate as (
    select
        entries.*,
        inputs.fingerprint_rates,
        inputs.fingerprint_erp
    from entries
    inner join inputs on entries.time_entry_id = inputs.time_entry_id
    {% if incremental -%}
    where entries.time_entry_id in (select time_entry_id from changed)
    {%- endif %}
),

project_card_summary as (
    select
        project_id,
        count(*) as rate_card_count,
        min(rate_card_id) as first_rate_card_id,
        min(currency_code) as first_card_currency_code
    from project_cards
    group by project_id
),

matching_versions as (
    select
        entries.time_entry_id,
        rate_card_versions.rate_card_version_id,
        rate_card_versions.rate_card_id,
        rate_card_versions.bill_rate,
        rate_card_versions.currency_code
    from entries_to_rate as entries
    inner join project_cards on entries.project_id = project_cards.project_id
    inner join rate_card_versions
        on project_cards.rate_card_id = rate_card_versions.rate_card_id
        and entries.rate_role = rate_card_versions.role
        and entries.spent_date >= rate_card_versions.effective_from
        and entries.spent_date <= coalesce(rate_card_versions.effective_to, {{ far_future }})
),

version_summary as (
    select
        time_entry_id,
        count(*) as matching_rate_count,
        min(rate_card_version_id) as rate_card_version_id,
        min(rate_card_id) as rate_card_id,
        min(bill_rate) as bill_rate,
        min(currency_code) as currency_code,
        {{ dbt.listagg('rate_card_version_id', "','", 'order by rate_card_version_id') }}
            as matching_rate_card_version_ids
    from matching_versions
    group by time_entry_id
),

standard_rated as (
    select
        entries.*,
        coalesce(project_card_summary.rate_card_count, 0) as rate_card_count,
        case when project_card_summary.rate_card_count = 1 then project_card_summary.first_rate_card_id end
            as rate_card_id,
        coalesce(version_summary.matching_rate_count, 0) as matching_rate_count,
        version_summary.matching_rate_card_version_ids,
        case when version_summary.matching_rate_count = 1 then version_summary.rate_card_version_id end
            as rate_card_version_id,
        case when version_summary.matching_rate_count = 1 then version_summary.bill_rate end
            as standard_bill_rate,
        case
            when version_summary.matching_rate_count = 1 then version_summary.currency_code
            when project_card_summary.rate_card_count = 1 then project_card_summary.first_card_currency_code
        end as standard_rate_currency_code
    from entries_to_rate as entries
    left join project_card_summary on entries.project_id = project_card_summary.project_id
    left join version_summary on entries.time_entry_id = version_summary.time_entry_id
),

applied as (
    select
        standard_rated.*,
        employees.hourly_cost as cost_rate,
        employees.cost_currency_code,
        coalesce(erp_entries.is_invoiced, false) as is_rated_from_invoice,
        case
            when erp_entries.is_invoiced then erp_entries.erp_hourly_rate else
                standard_rated.standard_bill_rate
        end
            as bill_rate,
        case
            when erp_entries.is_invoiced
                then coalesce(erp_entries.invoice_currency_code, standard_rated.standard_rate_currency_code)
            else standard_rated.standard_rate_currency_code
        end as rate_currency_code
    from standard_rated
    left join erp_entries on standard_rated.time_entry_id = erp_entries.time_entry_id
    left join employees on standard_rated.employee_version_id = employees.employee_version_id
),

amounts as (
    select
        *,
        -- time not billable earns nothing, unless it was invoiced anyway (then it is billed value)
        cast(
            case
                when is_billable or is_rated_from_invoice then hours * bill_rate
                else 0
            end as decimal(24, 8)
        ) as bill_amount,
        cast(hours * standard_bill_rate as decimal(24, 8)) as standard_value,
        cast(hours * cost_rate as decimal(24, 8)) as cost_amount
    from applied
),

final as (
    select
        amounts.time_entry_id,
        amounts.spent_date,
        amounts.hours,
        amounts.is_billable,
        amounts.is_deleted,
        amounts.project_id,
        amounts.employee_id,
        amounts.employee_version_id,
        amounts.rate_role,
        amounts.rate_card_count,
        amounts.rate_card_id,
        amounts.matching_rate_count,
        amounts.matching_rate_card_version_ids,
        amounts.rate_card_version_id,
        amounts.standard_bill_rate,
        amounts.standard_rate_currency_code,
        amounts.is_rated_from_invoice,
        amounts.bill_rate,
        amounts.rate_currency_code,
        amounts.bill_amount,
        amounts.standard_value,
        bill_fx.rate_to_reporting as bill_fx_rate,
        -- nothing to convert when nothing is billable (non-billable time may have no rate currency)
        cast(
            case when amounts.bill_amount = 0 then 0 else amounts.bill_amount * bill_fx.rate_to_reporting end
            as decimal(24, 8)
        ) as bill_amount_reporting,
        cast(amounts.standard_value * standard_fx.rate_to_reporting as decimal(24, 8))
            as standard_value_reporting,
        amounts.cost_rate,
        amounts.cost_currency_code,
        amounts.cost_amount,
        cost_fx.rate_to_reporting as cost_fx_rate,
        cast(amounts.cost_amount * cost_fx.rate_to_reporting as decimal(24, 8)) as cost_amount_reporting,
        amounts.fingerprint as fingerprint_resolved,
        amounts.fingerprint_rates,
        amounts.fingerprint_erp,
        -- all of this row's inputs and the code that computed it: what int_time_entries compares
        {{ fingerprint([
            'amounts.fingerprint', 'amounts.fingerprint_rates', 'amounts.fingerprint_erp', code_fingerprint(),
        ]) }} as fingerprint,
        {{ code_fingerprint() }} as code_fingerprint
    from amounts
    left join fx_rates as bill_fx
        on amounts.rate_currency_code = bill_fx.currency_code
        and amounts.spent_date = bill_fx.rate_date
    left join fx_rates as standard_fx
        on amounts.standard_rate_currency_code = standard_fx.currency_code
        and amounts.spent_date = standard_fx.rate_date
    left join fx_rates as cost_fx
        on amounts.cost_currency_code = cost_fx.currency_code
        and amounts.spent_date = cost_fx.rate_date
)

select * from final
