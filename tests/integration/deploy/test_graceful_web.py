"""SIGTERM to the web process while callbacks flow, as Kubernetes and Heroku stop it on every
rollout: gunicorn stops accepting, finishes the requests in flight, and exits within the grace
period; every callback it answered 200 is in Redis and gets stored."""

from __future__ import annotations

import signal
import socket
import threading
import urllib.error
from concurrent.futures import ThreadPoolExecutor

import ingest.gunicorn_conf as gunicorn_conf
from tests.conftest import start_web, start_worker
from tests.integration.deploy.conftest import stored_events
from tests.integration.test_pipeline import PUBLIC, send
from tests.twilio_fixtures import callback_fields, new_sid, signed_post
from tests.waiting import wait_for

# deploy/k8s/web.yaml's terminationGracePeriodSeconds, less its preStop pause: the time gunicorn
# has after SIGTERM before the kubelet kills it (the unit tests hold the manifest to it).
GRACE_SECONDS = gunicorn_conf.graceful_timeout + 5


def post_slowly(port: int, sid: str) -> tuple[socket.socket, bytes]:
    """Open a signed callback request and send all of it but its last byte: the request is
    in flight, read by a gunicorn thread that waits for the rest."""
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(sid, "delivered"))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"POST /twilio/status HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    request += body
    conn = socket.create_connection(("127.0.0.1", port), timeout=GRACE_SECONDS)
    conn.sendall(request[:-1])
    return conn, request[-1:]


def read_status(conn: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    conn.close()
    return int(data.split(b" ", 2)[1]) if data else 0


def test_sigterm_to_web_finishes_in_flight_callbacks_and_loses_no_acknowledged_one(
    spawn, env, db, redis_client
):
    web, base = start_web(spawn, env)
    port = int(base.rsplit(":", 1)[1])

    # A steady flow from 8 senders, each callback recorded with what the ingress answered.
    answers: dict[str, int | str] = {}
    lock = threading.Lock()
    stopping = threading.Event()

    def sender() -> None:
        while True:
            sid = new_sid()
            try:
                status = send(base, callback_fields(sid, "delivered"))[0]
            except (urllib.error.URLError, OSError) as exc:
                status = type(exc).__name__  # refused or reset: never acknowledged
            with lock:
                answers[sid] = status
            if stopping.is_set() and status != 200:
                return

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(sender)
        wait_for(lambda: sum(a == 200 for a in list(answers.values())) >= 300,
                 timeout=60, what="callbacks flowing")  # fmt: skip
        in_flight = [(sid, *post_slowly(port, sid)) for sid in (new_sid(), new_sid())]
        # Only once the server thread is reading it is a request in flight.
        threading.Event().wait(0.5)
        stopping.set()
        web.proc.send_signal(signal.SIGTERM)
        web.wait_for_output("Handling signal: term")
        # The requests in flight are finished, not dropped.
        for sid, conn, rest in in_flight:
            conn.sendall(rest)
            answers[sid] = read_status(conn)
        # Within the grace period (a bound on the test, not a measurement: the kubelet's).
        assert web.proc.wait(timeout=GRACE_SECONDS) == 0, web.output()[-3000:]

    # Stopped accepting: nothing listens any more.
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        raise AssertionError("the port still accepts connections after exit")
    except ConnectionRefusedError:
        pass
    assert [answers[sid] for sid, _, _ in in_flight] == [200, 200]
    # Only 200s or connections refused or reset: no 5xx while shutting down.
    assert {a for a in answers.values() if isinstance(a, int)} == {200}
    assert "Traceback" not in web.output()

    acknowledged = {sid for sid, a in answers.items() if a == 200}
    start_worker(spawn, env)
    wait_for(lambda: acknowledged <= set(stored_events(db)), timeout=60,
             what="every acknowledged callback stored")  # fmt: skip
    stored = stored_events(db)
    assert set(stored) <= set(answers)
    assert set(stored.values()) == {0}
