"""The web command's gunicorn worker: gunicorn's sync worker, the fastest for callbacks (one
request at a time per process, no thread switching: docs/benchmarks.md), which can also serve
GET /api/stream without giving it a thread.

A sync worker that held a stream open would serve nothing else for as long as it is open. This
one sends the stream's headers and first bytes, then gives the connection to the process's
stream writer (ingest/live/writer.py, one thread for all the process's streams) and goes back to
accepting requests. Every other request takes gunicorn's own path unchanged.

It also closes each answered connection after a short linger (LINGER_SECONDS) rather than
gunicorn's 2 s: the sync worker waits for the client's FIN before it takes the next connection,
and a client that keeps its socket open after a `Connection: close` answer (an HTTP library
that pools connections it no longer uses) held the process for 2 s per request.

Usage: gunicorn -k ingest.web_worker.Worker (the default in ingest/gunicorn_conf.py)
"""

from __future__ import annotations

import socket
from datetime import datetime
from typing import Any

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers.sync import SyncWorker

from ingest.stream_handoff import HANDOFF, SERVES_STREAMS, Handoff

STREAM_PATH = "/api/stream"
# Long enough for a client that reads its answer to close (its FIN crosses a LAN or a proxy
# hop in milliseconds), so that unread request bytes never make the close a reset that cuts
# the answer short; short enough that one that does not close costs the process little.
LINGER_SECONDS = 0.1


class Worker(SyncWorker):
    def handle_request(self, listener: Any, req: Any, client: socket.socket, addr: Any) -> None:
        if req.path != STREAM_PATH or self.cfg.is_ssl:
            super().handle_request(listener, req, client, addr)
            # Answered: close now, with our linger (gunicorn's own close then finds it closed).
            util.close_graceful(client, timeout=LINGER_SECONDS)
        else:
            self._handle_stream(listener, req, client, addr)

    def _handle_stream(self, listener: Any, req: Any, client: socket.socket, addr: Any) -> None:
        """gunicorn's handle_request, except that an accepted stream's connection is handed
        over instead of closed (and its length is open: chunked for HTTP/1.1, until the close
        for HTTP/1.0)."""
        self.cfg.pre_request(self, req)
        started = datetime.now()
        resp, environ = wsgi.create(req, client, addr, listener.getsockname(), self.cfg)
        resp.force_close()
        environ[SERVES_STREAMS] = True
        self.nr += 1
        if self.nr >= self.max_requests:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        body = self.wsgi(environ, resp.start_response)
        handoff: Handoff | None = environ.get(HANDOFF)
        try:
            for chunk in body:
                resp.write(chunk)
            if handoff is None or resp.status_code != 200:
                resp.close()
            else:
                resp.send_headers()
                # detach(): gunicorn closes `client` after this returns, which must not end
                # the connection the writer now owns.
                handoff.attach(socket.socket(fileno=client.detach()), chunked=resp.chunked)
                handoff = None
        finally:
            if handoff is not None:
                handoff.cancel()
            self.log.access(resp, req, environ, datetime.now() - started)
            close = getattr(body, "close", None)
            if close is not None:
                close()
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:  # as gunicorn's own handle_request
                self.log.exception("Exception in post_request hook")
