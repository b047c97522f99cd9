"""Alerts: what one says (`alert`) and where it goes (`sinks`)."""
