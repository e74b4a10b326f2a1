{#- One rate per currency and calendar day to the reporting currency (var reporting_currency),
    at the ERP's rate for that day: taken from a realm that quotes the pair directly, else the
    inverse of the opposite quote. A day without a quote takes the latest earlier quote
    (is_carried_forward); a day before any quote has no rate, and amounts stay null rather
    than being converted at a guess. -#}
{%- set reporting = var('reporting_currency') -%}
with quotes as (
    select * from {{ ref('stg_erp__exchange_rates') }}
),

dates as (
    select date_day from {{ ref('int_dates') }}
),

direct as (
    select
        source_currency_code as currency_code,
        rate_date,
        avg(rate) as rate_to_reporting,
        1 as preference
    from quotes
    where target_currency_code = '{{ reporting }}'
    group by source_currency_code, rate_date
),

inverse as (
    select
        target_currency_code as currency_code,
        rate_date,
        avg({{ divide('1', 'rate') }}) as rate_to_reporting,
        2 as preference
    from quotes
    where source_currency_code = '{{ reporting }}' and rate > 0
    group by target_currency_code, rate_date
),

quoted as (
    select
        currency_code,
        rate_date,
        rate_to_reporting
    from (
        select
            *,
            row_number() over (partition by currency_code, rate_date order by preference) as choice
        from (
            select * from direct
            union all
            select * from inverse
        ) as both_ways
    ) as ranked
    where choice = 1
),

spans as (
    select
        currency_code,
        rate_date,
        rate_to_reporting,
        lead(rate_date) over (partition by currency_code order by rate_date) as next_rate_date
    from quoted
),

filled as (
    select
        spans.currency_code,
        dates.date_day as rate_date,
        cast(spans.rate_to_reporting as decimal(18, 8)) as rate_to_reporting,
        dates.date_day != spans.rate_date as is_carried_forward,
        spans.rate_date as quoted_on
    from spans
    inner join dates
        on dates.date_day >= spans.rate_date
        and (spans.next_rate_date is null or dates.date_day < spans.next_rate_date)
),

reporting_itself as (
    select
        '{{ reporting }}' as currency_code,
        date_day as rate_date,
        cast(1 as decimal(18, 8)) as rate_to_reporting,
        false as is_carried_forward,
        date_day as quoted_on
    from dates
),

final as (
    select * from filled
    union all
    select * from reporting_itself
)

select * from final
