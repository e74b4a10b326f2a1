{#- The reverse ETL's only input (reverse_etl/, docs/reverse_etl.md): int_billable_lines (one row
    per line the ERP should hold, or holds and may have to lose; the logic and line_status live
    there), with names beside the ids from the dims (current employee version), for people
    reading the lines; the sync sends none of them. Null where a dim does not know the id. -#}
{{ with_names(ref('int_billable_lines'), project_code=false, employee=true) }}
