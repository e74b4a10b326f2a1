{#-
  Harvest deletions of `<table_name>` (`raw_time.<table_name>_deletions`, see
  ingestion/harvest/deletions.py) that still stand: suspected or confirmed, one row per id, with
  when the record was last found missing. A row written before deletions were confirmed has only
  `detected_at`: it is a suspicion, found missing once, at `detected_at`.
-#}
{% macro harvest_open_deletions(table_name) -%}
    select
        id,
        detected_at,
        coalesce(last_confirmed_at, detected_at) as last_missing_at,
        coalesce(status, 'suspected') as deletion_status,
        confirmed_at
    from ({{ optional_source('time', table_name ~ '_deletions', {
        'id': 'bigint',
        'detected_at': type_timestamp_tz(),
        'last_confirmed_at': type_timestamp_tz(),
        'status': dbt.type_string(),
        'confirmed_at': type_timestamp_tz(),
    }) }}) as deletions
    where coalesce(status, 'suspected') in ('suspected', 'confirmed')
{%- endmacro %}


{#-
  The deletion state of a Harvest record (`source` joined to `deletions_open`): null when none
  stands, or when the record was loaded again after it was last found missing (Harvest served it,
  it exists; dlt's load id is the load's start in epoch seconds, the loader's clock like
  last_missing_at).
-#}
{% macro harvest_deletion_status(source, deletions) -%}
    case
        when {{ epoch_to_timestamp(source ~ '._dlt_load_id') }} > {{ deletions }}.last_missing_at then null
        else {{ deletions }}.deletion_status
    end
{%- endmacro %}


{#-
  The deletion columns a Harvest staging model publishes, from `deletion_status`,
  `deletion_detected_at` and `deletion_confirmed_at`: only a confirmed deletion is `is_deleted`.
-#}
{% macro harvest_deletion_columns() -%}
        coalesce(deletion_status = 'confirmed', false) as is_deleted,
        deletion_status,
        case when deletion_status is not null then cast(deletion_detected_at as timestamp) end as deleted_detected_at,
        case when deletion_status = 'confirmed' then cast(deletion_confirmed_at as timestamp) end as deleted_confirmed_at
{%- endmacro %}
