{#- One row per PSA milestone; built in int_milestones (intermediate/delivery). -#}
select * from {{ ref('int_milestones') }}
