{#- Time to invoice per invoice month, practice (the project's) and client: how many invoiced
    entries and hours, and the median and 90th percentile of days worked -> invoiced and
    approved -> invoiced, per entry (each invoiced entry counts once, whatever its hours).
    Percentiles are continuous (linear interpolation between the two nearest entries,
    percentile_cont), so a median of an even count can be a half day. -#}
with entries as (
    select * from {{ ref('rpt_time_to_invoice') }}
),

final as (
    select
        invoice_month,
        practice,
        client_id,
        count(*) as invoiced_entry_count,
        cast(sum(hours) as decimal(14, 4)) as invoiced_hours,
        cast(percentile_cont(0.5) within group (order by days_worked_to_invoice) as decimal(10, 2))
            as median_days_worked_to_invoice,
        cast(percentile_cont(0.9) within group (order by days_worked_to_invoice) as decimal(10, 2))
            as p90_days_worked_to_invoice,
        cast(percentile_cont(0.5) within group (order by days_approved_to_invoice) as decimal(10, 2))
            as median_days_approved_to_invoice,
        cast(percentile_cont(0.9) within group (order by days_approved_to_invoice) as decimal(10, 2))
            as p90_days_approved_to_invoice,
        cast(avg(days_worked_to_invoice) as decimal(10, 2)) as mean_days_worked_to_invoice
    from entries
    group by invoice_month, practice, client_id
)

{#- names beside the ids (macro with_names) -#}
{{ with_names('final', project_code=false, project_name=false) }}
