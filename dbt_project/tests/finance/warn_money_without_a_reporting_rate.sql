-- Money the warehouse cannot convert to the reporting currency: the ERP quoted no rate for its
-- currency on or before that day (int_fx_rates_daily never guesses). The transaction-currency
-- columns keep these amounts, but they fall out of every reporting-currency sum. A warning, not
-- a block: one row per fact table and currency says how much is missing and from which days, so
-- Finance can load the missing ERP rates.
{{ config(severity='warn') }}

{% set facts = [
    ('fct_time_entries', 'spent_date', 'bill_amount', 'bill_amount_reporting', 'currency_code'),
    ('fct_time_entries', 'spent_date', 'cost_amount', 'cost_amount_reporting', 'cost_currency_code'),
    ('fct_expenses', 'spent_date', 'amount', 'amount_reporting', 'currency_code'),
    ('fct_invoices', 'invoice_date', 'total_amount', 'total_amount_reporting', 'currency_code'),
    ('fct_invoice_lines', 'invoice_date', 'amount', 'amount_reporting', 'currency_code'),
    ('fct_payments', 'payment_date', 'amount', 'amount_reporting', 'currency_code'),
] %}

{% for model, day, amount, reporting, currency in facts %}
select
    '{{ model }}.{{ amount }}' as amount_column,
    {{ currency }},
    count(*) as row_count,
    sum({{ amount }}) as unconverted_amount,
    min({{ day }}) as first_day,
    max({{ day }}) as last_day
from {{ ref(model) }}
where {{ amount }} is not null and {{ amount }} != 0 and {{ reporting }} is null
group by {{ currency }}
{% if not loop.last %}union all{% endif %}
{% endfor %}
