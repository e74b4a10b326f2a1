{#- Employees with history (SCD2), one row per version; built in int_employees (intermediate/core).
    hourly_cost is sensitive (restricted to finance; dashboards never select it). -#}
select * from {{ ref('int_employees') }}
