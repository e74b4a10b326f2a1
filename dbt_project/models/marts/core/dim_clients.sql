{#- One row per client; built in int_clients (intermediate/core). -#}
select * from {{ ref('int_clients') }}
