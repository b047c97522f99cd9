"""The JSON API under /api: bearer token `API_TOKEN`, and every error as
`{"error": {"code", "message", "field"}}` (ingest/api/errors.py).

One blueprint (blueprint.py), one module per resource: messages (read), send (POST), contacts,
reports (the daily delivery report).
"""

from __future__ import annotations

from ingest.api import contacts, messages, reports, send
from ingest.api.blueprint import bp

__all__ = ["bp", "contacts", "messages", "reports", "send"]
