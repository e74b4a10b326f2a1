{#- One row per CRM contract (SOW); built in int_contracts (intermediate/core). -#}
select * from {{ ref('int_contracts') }}
