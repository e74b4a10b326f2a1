with source as (
    select * from {{ source('erp', 'customers') }}
),

final as (
    select
        realm_id || ':' || id as erp_customer_key,
        realm_id,
        id as erp_customer_id,
        display_name as customer_name,
        {{ normalise_client_name('display_name') }} as customer_name_normalised,
        company_name,
        fully_qualified_name,
        coalesce(job, false) as is_job,
        parent_ref__value as parent_erp_customer_id,
        coalesce(active, false) as is_active,
        notes,
        -- the CRM account id the firm wrote into the customer's notes (`sfdc:<AccountId>`)
        case when notes like 'sfdc:%' then substr(notes, 6) end as crm_account_id,
        currency_ref__value as currency_code,
        sync_token,
        {{ utc('meta_data__create_time') }} as created_at,
        {{ utc('meta_data__last_updated_time') }} as updated_at
    from source
)

select * from final
