"""How GET /api/stream (ingest/live/views.py) and the web worker (ingest/web_worker.py) pass an
open stream between them: the worker marks the requests whose connection it can give away; the
view, once it has accepted a stream, leaves a Handoff in the environ; the worker sends the
response's headers and first bytes, then hands the connection over and takes the next request.

Kept apart from ingest/live/ so that gunicorn's master, which imports the worker class before
any hook runs, imports nothing else of the app.
"""

from __future__ import annotations

import socket
from typing import Protocol

SERVES_STREAMS = "statuspipe.serves_streams"  # set by the worker
HANDOFF = "statuspipe.stream_handoff"  # set by the view: a Handoff


class Handoff(Protocol):
    def attach(self, sock: socket.socket, chunked: bool) -> None:
        """Take over `sock`, whose headers and first bytes are sent: chunked for HTTP/1.1,
        else the body ends when the connection closes."""

    def cancel(self) -> None:
        """The connection never reached attach (the client left while the headers went
        out, or the answer was not a 200): give the stream's place back."""
