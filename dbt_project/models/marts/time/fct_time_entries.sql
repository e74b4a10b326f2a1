{#- One row per time entry (current version; deleted entries removed), resolved, rated and linked
    to the ERP line and invoice that carry it.

    The rows and columns are int_time_entries' (the logic lives there). Incremental
    (delete+insert on time_entry_id): each run reads every entry from int_time_entries and
    writes only the rows that are new or differ from what the table holds (row_hash, a hash of
    every column), plus every entry whose updated_at is within
    var incremental_lookback_days of the table's latest (late and corrected records). So a
    change of any rating input - a rate-card amendment, an HR cost rate, an identity fix, a
    TimeActivity posted or invoiced, an FX quote - re-writes exactly the entries it affects,
    without a hand-kept list of inputs and their stamps, and an incremental run equals a full
    refresh (tests/test_warehouse_incremental.py). Entries deleted in the time tool are removed
    by the post-hook. -#}
{#- Strategy: delete+insert, which DuckDB and PostgreSQL 15 both support (PostgreSQL's merge would
    do too): the rows whose time_entry_id comes again are deleted, then all are inserted. -#}
{{
    config(
        materialized='incremental',
        unique_key='time_entry_id',
        incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'delete+insert'),
        on_schema_change='sync_all_columns',
        post_hook=[
            "{{ delete_where(this, 'time_entry_id not in (select time_entry_id from ' ~ ref('stg_time__time_entries') ~ ' where not is_deleted)') }}"
        ],
    )
}}
with entries as (
    select * from {{ ref('int_time_entries') }}
),

final as (
    select
        entries.time_entry_id,
        {%- for column in time_entry_fact_columns() %}
        entries.{{ column }},
        {%- endfor %}
        entries.row_hash
    from entries
    {% if is_incremental() %}
    left join {{ this }} as existing on entries.time_entry_id = existing.time_entry_id
    where
        existing.time_entry_id is null
        or existing.row_hash != entries.row_hash
        or entries.updated_at >= (
            select {{ dbt.dateadd('day', -var('incremental_lookback_days'), 'max(updated_at)') }}
            from {{ this }}
        )
    {% endif %}
)

select * from final
