{#- Time approved after the ERP closed the month of its day, in the realm of the project's legal
    entity: it can no longer be billed into the period it belongs to. For a project the PSA does
    not know, the realm is that of the client's contracts (the Harvest project's client), when
    they are all in one legal entity, else the person's. Both the close and the approval must
    have happened by the warehouse's now. -#}
with entries as (
    select * from {{ ref('int_time_entries_resolved') }}
),

time_entries as (
    select * from {{ ref('stg_time__time_entries') }}
),

client_ids as (
    select * from {{ ref('int_client_source_ids') }}
    where source_system = 'time'
),

contracts as (
    select * from {{ ref('int_contracts') }}
),

legal_entities as (
    select * from {{ ref('stg_firm__legal_entities') }}
),

closes as (
    select * from {{ ref('int_period_closes') }}
    where is_closed
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

client_legal_entities as (
    select
        client_id,
        min(legal_entity) as legal_entity
    from contracts
    group by client_id
    having count(distinct legal_entity) = 1
),

approved as (
    select
        entries.*,
        case
            when entries.is_known_project then entries.realm_id
            else coalesce(client_realms.erp_realm_id, entries.realm_id)
        end as close_realm_id
    from entries
    inner join time_entries on entries.time_entry_id = time_entries.time_entry_id
    left join client_ids
        on cast(time_entries.time_client_id as {{ dbt.type_string() }}) = client_ids.source_id
    left join client_legal_entities on client_ids.client_id = client_legal_entities.client_id
    left join
        legal_entities as client_realms
        on client_legal_entities.legal_entity = client_realms.legal_entity
    cross join as_of
    where
        not entries.is_deleted
        and entries.approval_status = 'approved'
        and entries.approved_at <= as_of.as_of_at
),

after_close as (
    select
        approved.*,
        closes.month_start_date,
        closes.closed_at,
        closes.closed_at_source
    from approved
    inner join closes
        on approved.close_realm_id = closes.realm_id
        and approved.spent_date between closes.month_start_date and closes.month_end_date
    cross join as_of
    where
        approved.approved_at > closes.closed_at
        and closes.closed_at <= as_of.as_of_at
),

final as (
    select
        {{ time_entry_exception(
            'TIME_CLOSED_PERIOD',
            "'approved ' || cast(after_close.approved_at as " ~ dbt.type_string() ~ ") || ', after the books of '"
                ~ " || left(cast(after_close.month_start_date as " ~ dbt.type_string() ~ "), 7) || ' closed in realm '"
                ~ " || after_close.close_realm_id || ' at ' || cast(after_close.closed_at as " ~ dbt.type_string() ~ ")",
            exception_details([
                ['approved_at', 'after_close.approved_at'],
                ['realm_id', 'after_close.close_realm_id'],
                ['closed_at', 'after_close.closed_at'],
                ['closed_at_source', 'after_close.closed_at_source'],
                ['hours', 'after_close.hours'],
            ]),
            alias='after_close'
        ) }}
    from after_close
)

select * from final
