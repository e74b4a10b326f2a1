-- A fixed-fee contract recognised by percent complete needs budget hours on its PSA projects;
-- without them rpt_revenue can recognise nothing for it (percent_complete stays null). A warning,
-- not a block: the rest of the warehouse is right, and Finance fixes the budget in the PSA.
{{ config(severity='warn') }}

select
    contracts.contract_id,
    contracts.contract_number,
    sum(projects.budget_hours) as budget_hours
from {{ ref('dim_contracts') }} as contracts
left join {{ ref('dim_projects') }} as projects on contracts.contract_id = projects.contract_id
where contracts.billing_method = 'fixed_fee_percent_complete'
group by contracts.contract_id, contracts.contract_number
having coalesce(sum(projects.budget_hours), 0) <= 0
