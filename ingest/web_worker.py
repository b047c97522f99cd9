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

And it waits for connections with an epoll that holds the listening socket EPOLLEXCLUSIVE, where
gunicorn's select() woke every idle process for each new connection, and all but one then
found nothing to accept. At a steady 1,000 callbacks/s, each on a new connection, the web's CPU
per callback fell from 570 to 535 us (3 alternating runs each of bench/live.py's load with no
stream open).

A connection that sends nothing within FIRST_BYTES_SECONDS of being accepted is closed, so an
idle one never holds the process (with TCP_DEFER_ACCEPT the kernel hands those over only
after about 15 s; ingest/gunicorn_conf.py).

Usage: gunicorn -k ingest.web_worker.Worker (the default in ingest/gunicorn_conf.py)
"""

from __future__ import annotations

import os
import select
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


# How long a connection handed over without a byte of its request may take to send one. With
# TCP_DEFER_ACCEPT (ingest/gunicorn_conf.py) the kernel hands over connections whose request
# has begun, and after about 15 s also those that never sent anything; a sync worker would then
# wait on such a one until gunicorn's timeout killed the process (measured: a callback behind
# it waited 27 s). Long enough for a real client's first packet after its handshake.
FIRST_BYTES_SECONDS = 1.0


class Worker(SyncWorker):
    _poller: select.epoll | None = None

    def accept(self, listener: Any) -> None:
        """gunicorn's accept(), except that a connection that sends nothing is closed."""
        client, addr = listener.accept()
        util.close_on_exec(client)
        if not _readable_within(client, FIRST_BYTES_SECONDS):
            self.log.info("closed a connection that sent nothing for %.0f s", FIRST_BYTES_SECONDS)
            client.close()
            return
        client.setblocking(True)
        self.handle(listener, client, addr)

    def wait(self, timeout: float) -> list[Any] | None:
        """gunicorn's wait(): until a listener has a connection (or a signal arrives), at most
        `timeout` s; but a new connection wakes one idle process, not all of them."""
        if not hasattr(select, "EPOLLEXCLUSIVE"):  # not Linux: gunicorn's select()
            return super().wait(timeout)  # type: ignore[no-any-return]
        if self._poller is None:
            self._poller = select.epoll()
            for listener in self.sockets:
                self._poller.register(listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
            self._poller.register(self.PIPE[0], select.EPOLLIN)  # signals (set_wakeup_fd)
        self.notify()
        ready = {fd for fd, _ in self._poller.poll(timeout)}
        if self.PIPE[0] in ready:
            os.read(self.PIPE[0], 1)
        return [listener for listener in self.sockets if listener.fileno() in ready]

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


def _readable_within(sock: socket.socket, seconds: float) -> bool:
    """Has `sock` data (or an end) to read within `seconds`? poll, not select: a process that
    holds hundreds of streams has descriptors past select's 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(seconds * 1000))
