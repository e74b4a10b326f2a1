"""Reverse ETL: approved billable lines from the warehouse to the ERP, exactly once.

plan (rpt_billable_lines vs the ledger) → send (batches, requestids, retries) → ledger and audit
log. See docs/reverse_etl.md; `python -m reverse_etl --help`.
"""
