"""Billable's executive dashboards: a Streamlit multipage app over the published warehouse."""
