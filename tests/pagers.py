"""Tests page the sandbox with the benchmark's bare clients (one implementation of each dialect)."""

from billable.bare_clients import harvest, kantata, quickbooks, salesforce

__all__ = ["harvest", "kantata", "quickbooks", "salesforce"]
