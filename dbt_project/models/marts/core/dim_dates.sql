{#- The calendar with fiscal attributes; built in int_dates (intermediate/calendar). -#}
select * from {{ ref('int_dates') }}
