with source as (
    select * from {{ source('crm', 'contract') }}
),

final as (
    select
        id as contract_id,
        contract_number,
        account_id,
        opportunity_id__c as opportunity_id,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        status as contract_status,
        currency_iso_code as currency_code,
        {{ money('contract_value__c') }} as contract_value,
        {{ money('monthly_fee__c') }} as monthly_fee,
        billing_method__c as billing_method,
        legal_entity__c as legal_entity,
        {{ utc('created_date') }} as created_at,
        {{ utc('system_modstamp') }} as updated_at
    from source
)

select * from final
