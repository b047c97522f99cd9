"""Plain-text answers: the callers are machines (Twilio) or operators with curl."""

from __future__ import annotations

from flask import Response


def plain(status: int, text: str = "", headers: dict[str, str] | None = None) -> Response:
    return Response(text, status=status, mimetype="text/plain", headers=headers)
