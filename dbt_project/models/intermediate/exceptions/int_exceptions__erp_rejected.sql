{#- Lines the ERP refused. Their source is the reverse-ETL ledger (reverse_etl/, issue 6), which
    does not exist yet: until it does, this rule has nothing to read and yields no rows, with the
    columns every rule shares so fct_exceptions and the queue already carry it. -#}
select
    {{ exception_columns(
        'ERP_REJECTED', 'billable_line', 'null', 'erp', 'null', 'null', 'null', 'null'
    ) }}
where false
