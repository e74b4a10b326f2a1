{#- Current version of every Harvest expense; deleted ones flagged, not dropped, once the loader
    confirmed the deletion (see stg_time__time_entries and ingestion/harvest/deletions.py). -#}
{%- set deletion_columns = {
    'id': 'bigint',
    'detected_at': 'timestamp with time zone',
    'last_confirmed_at': 'timestamp with time zone',
    'status': 'varchar',
    'confirmed_at': 'timestamp with time zone',
} -%}
{%- set deletions_table = source('time', 'expenses_deletions') -%}
{%- set found = adapter.get_relation(deletions_table.database, deletions_table.schema, deletions_table.identifier) if execute else none -%}
{%- set present = (adapter.get_columns_in_relation(found) | map(attribute='name') | map('lower') | list) if found is not none else [] -%}
with source as (
    select * from {{ source('time', 'expenses') }}
),

deletions as (
    {#- A table written before deletions were confirmed lacks the newer columns: null stands in. -#}
    select
        {%- for name, type in deletion_columns.items() %}
        {% if name in present %}cast({{ adapter.quote(name) }} as {{ type }}){% else %}cast(null as {{ type }}){% endif %} as {{ adapter.quote(name) }}{{ "," if not loop.last }}
        {%- endfor %}
    {%- if found is not none %}
    from {{ deletions_table }}
    {%- else %}
    where false
    {%- endif %}
),

deletions_open as (
    select
        id,
        detected_at,
        -- an old row (only detected_at) is a suspicion found missing once, at detected_at
        coalesce(last_confirmed_at, detected_at) as last_missing_at,
        coalesce(status, 'suspected') as deletion_status,
        confirmed_at
    from deletions
    where coalesce(status, 'suspected') in ('suspected', 'confirmed')
),

flagged as (
    select
        source.*,
        case
            -- loaded again after it was last found missing (dlt's load id is the load's start in
            -- epoch seconds, the loader's clock like last_missing_at): Harvest served it, it exists
            when to_timestamp(cast(source._dlt_load_id as double)) > deletions_open.last_missing_at then null
            else deletions_open.deletion_status
        end as deletion_status,
        deletions_open.detected_at as deletion_detected_at,
        deletions_open.confirmed_at as deletion_confirmed_at
    from source
    left join deletions_open on source.id = deletions_open.id
),

final as (
    select
        id as expense_id,
        user__id as time_user_id,
        client__id as time_client_id,
        project__id as time_project_id,
        project__code as project_code,
        {{ normalise_project_code('project__code') }} as project_code_normalised,
        expense_category__name as expense_category,
        cast(spent_date as date) as spent_date,
        {{ money('total_cost') }} as amount,
        client__currency as currency_code,
        units,
        coalesce(notes, '') as notes,
        coalesce(billable, false) as is_billable,
        coalesce(is_locked, false) as is_locked,
        coalesce(is_billed, false) as is_billed,
        approval_status,
        {{ utc('submitted_at') }} as submitted_at,
        {{ utc('approved_at') }} as approved_at,
        invoice__id as harvest_invoice_id,
        {{ utc('created_at') }} as created_at,
        {{ utc('updated_at') }} as updated_at,
        coalesce(deletion_status = 'confirmed', false) as is_deleted,
        deletion_status,
        case when deletion_status is not null then cast(deletion_detected_at as timestamp) end as deleted_detected_at,
        case when deletion_status = 'confirmed' then cast(deletion_confirmed_at as timestamp) end as deleted_confirmed_at
    from flagged
)

select * from final
