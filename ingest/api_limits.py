"""Rate limit of unauthenticated admin API requests, per client, counted in Redis.

flask-limiter, limited to the /api blueprint: a request with a valid bearer token is exempt,
and only answers of 401 count, so a client guessing tokens gets 429 after
API_UNAUTHENTICATED_LIMIT tries while operators with the token are never slowed. The counters
live in the ingress's Redis (its connection pool, so the same timeouts), shared by every
gunicorn worker and replica. If Redis fails the limit is skipped, not the request: the token
check still guards the API. /twilio/status is a WSGI fast path in front of Flask, which no
Flask extension sees.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ingest.api.blueprint import bearer_token_is_valid
from ingest.api.blueprint import bp as api_bp
from ingest.context import IngestContext

KEY_PREFIX = "statuspipe:api-limit"


def _unauthorized(response: Response) -> bool:
    return response.status_code == 401


def install_api_limits(app: Flask, ctx: IngestContext) -> Limiter:
    # Per client: the address gunicorn sees. Behind a proxy that is the proxy's unless the
    # proxy sets REMOTE_ADDR (see README "Admin API protection").
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        storage_uri="redis://",
        storage_options={"connection_pool": ctx.redis.connection_pool},
        key_prefix=KEY_PREFIX,
        default_limits=[],
        headers_enabled=True,
        swallow_errors=True,
    )
    limiter.limit(
        ctx.settings.api_unauthenticated_limit,
        exempt_when=bearer_token_is_valid,
        deduct_when=_unauthorized,
    )(api_bp)
    return limiter
