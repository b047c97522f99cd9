"""Celery workers: drain the callback stream in batches into the database."""
