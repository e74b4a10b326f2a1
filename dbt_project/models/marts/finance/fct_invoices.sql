{#- One row per ERP invoice; built in int_invoices (intermediate/finance). -#}
select * from {{ ref('int_invoices') }}
