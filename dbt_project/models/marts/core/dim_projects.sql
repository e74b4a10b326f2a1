{#- One row per project; built in int_projects (intermediate/core). -#}
select * from {{ ref('int_projects') }}
