with source as (
    select * from {{ source('crm', 'account') }}
),

final as (
    select
        id as account_id,
        name as account_name,
        {{ normalise_client_name('name') }} as account_name_normalised,
        type as account_type,
        industry,
        billing_country,
        currency_iso_code as currency_code,
        owner_id as owner_user_id,
        coalesce(is_deleted, false) as is_deleted,
        {{ utc('created_date') }} as created_at,
        {{ utc('system_modstamp') }} as updated_at
    from source
)

select * from final
