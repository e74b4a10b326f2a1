-- Time to invoice per invoiced time entry = invoice date - day worked (kpis.md), the first
-- invoice dated on or before the clock that carries it.
create or replace temp table lim_time_to_invoice as
select b.time_entry_id, e.spent_date, min(b.invoice_date) as invoice_date,
       datediff('day', e.spent_date, min(b.invoice_date)) as days_worked_to_invoice
from lim_billed_time as b
inner join lim_entries as e on e.time_entry_id = b.time_entry_id
group by b.time_entry_id, e.spent_date;
