{#- Lines the ERP refused, with its error code and message. Their source is the reverse-ETL
    ledger (reverse_etl/, issue 6), which is not built yet: until it is, this rule has nothing to
    read and yields no rows. It is not a stub pretending to work: it gives the rule its place in
    fct_exceptions and the queue now, with the columns every rule shares, and it is the one rule
    the manifest comparison leaves out. When the ledger lands, select its rejected pushes here
    (record_type billable_line, record_id the line's idempotency key, details the ERP's code and
    message). -#}
with final as (
    select
        {{ exception_columns(
            'ERP_REJECTED', 'billable_line', 'null', 'erp', 'null', 'null', 'null', 'null'
        ) }}
)

select * from final
where false
