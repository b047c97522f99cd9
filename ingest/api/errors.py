"""Every /api error has one shape, so clients parse one thing:
`{"error": {"code": "<machine code>", "message": "<for a person>", "field": "<input>|null"}}`."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify


def api_error(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "field": field, **extra}})
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response
