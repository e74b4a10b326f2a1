with source as (
    select * from {{ source('time', 'clients') }}
),

final as (
    select
        id as time_client_id,
        name as client_name,
        {{ normalise_client_name('name') }} as client_name_normalised,
        coalesce(is_active, false) as is_active,
        currency as currency_code,
        address,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at
    from source
)

select * from final
