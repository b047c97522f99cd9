"""The HTTP ingress: Twilio status callbacks in, read API, live views and probes.

The app is built in ingest/app.py (entry point for gunicorn: ingest/wsgi.py). This package
imports nothing itself: gunicorn's master imports the worker class (ingest/web_worker.py)
before its hooks run, and must not load the app (or prometheus_client) that early.
"""
