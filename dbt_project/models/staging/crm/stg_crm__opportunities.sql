with source as (
    select * from {{ source('crm', 'opportunity') }}
),

final as (
    select
        id as opportunity_id,
        account_id,
        name as opportunity_name,
        stage_name,
        cast(close_date as date) as close_date,
        {{ money('amount') }} as amount,
        currency_iso_code as currency_code,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_won, false) as is_won,
        type as opportunity_type,
        probability,
        owner_id as owner_user_id,
        practice__c as practice,
        billing_method__c as billing_method,
        {{ utc('created_date') }} as created_at,
        {{ utc('system_modstamp') }} as updated_at
    from source
)

select * from final
