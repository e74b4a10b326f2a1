{#- The warehouse's "now", one row: the var as_of_at when given (to rebuild as of a past
    moment), else the ERP's own clock at the last load (QuickBooks stamps every answer), else
    the build's clock. Ages, deadlines and "still unapproved" are measured against it, so a
    warehouse built from a snapshot of the systems judges them as of that snapshot. -#}
with preferences as (
    select * from {{ ref('stg_erp__preferences') }}
),

final as (
    select
        coalesce(
            {% if var('as_of_at') %}cast('{{ var("as_of_at") }}' as timestamp),
            {% endif %}
            (select max(observed_at) from preferences),
            cast({{ dbt.current_timestamp() }} as timestamp)
        ) as as_of_at
)

select
    as_of_at,
    cast(as_of_at as date) as as_of_date
from final
