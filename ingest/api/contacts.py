"""GET /api/contacts/<number>: what statuspipe learned about a recipient from Twilio's errors."""

from __future__ import annotations

from urllib.parse import unquote

from flask import Response, current_app, jsonify

from ingest.api.blueprint import bp
from ingest.api.errors import api_error
from ingest.api.views import iso
from ingest.context import IngestContext
from shared.models import Contact


@bp.get("/contacts/<path:number>")
def get_contact(number: str) -> Response:
    # Werkzeug has decoded %2B already; a client that encoded twice still finds the number.
    number = unquote(number).strip()
    if "\x00" in number:  # PostgreSQL text cannot hold one: it would be a 500
        return api_error(400, "invalid", "number must not contain NUL characters", "number")
    ctx: IngestContext = current_app.extensions["statuspipe"]
    with ctx.sessions() as session:
        contact = session.get(Contact, number)
        if contact is None:
            return api_error(404, "not_found", f"no contact {number}", "number")
        return jsonify(
            {
                "number": contact.number,
                "state": contact.state,
                "reason_code": contact.reason_code,
                "source_sid": contact.source_sid,
                "updated_at": iso(contact.updated_at),
            }
        )
