{#- One row per expense; built in int_expenses (intermediate/time). -#}
select * from {{ ref('int_expenses') }}
