"""Delivery reports: what counts where (`definitions`), the daily report's query (`daily`) and
the trailing-days delivery rate the drop alert compares against (`baseline`).

Used by the web API (`GET /api/reports/daily`), the CLI (`statuspipe report`, `drop-check`) and
the beat jobs. Day boundaries are computed here in Python from REPORT_TIMEZONE; the SQL only
compares timestamps, so it is the same on PostgreSQL and SQLite.
"""
