"""HTTP servers that serve a sandbox world in Salesforce, Kantata, Harvest and QuickBooks dialects."""
