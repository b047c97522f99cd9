"""A webhook receiver on 127.0.0.1 that records every POST: where alerts go in tests and `make run`.

The path picks the answer, so one receiver plays a healthy endpoint and every way one fails:
`/down` 500, `/gone` 404, `/busy` 429 with Retry-After 7, `/moved` 302, `/hang` never answers
(until stopped), anything else 200 (`/accepted` 202).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWERS = {"/accepted": 202, "/down": 500, "/gone": 404, "/busy": 429, "/moved": 302}


class WebhookReceiver:
    def __init__(self, port: int = 0) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.posts.append((self.path, dict(self.headers), body))
                if self.path == "/hang":
                    receiver.release.wait(30)
                    return
                status = ANSWERS.get(self.path, 200)
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "7")
                if status == 302:
                    self.send_header("Location", "/ok")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            bodies = [body for _, _, body in self.posts]
        return [json.loads(body) for body in bodies if body]

    def alerts(self, kind: str | None = None, code: int | None = None) -> list[dict[str, Any]]:
        """The structured `alert` of every post statuspipe's webhook sink made, filtered."""
        found = [doc["alert"] for doc in self.documents() if "alert" in doc]
        return [
            a
            for a in found
            if (kind is None or a["kind"] == kind) and (code is None or a["code"] == code)
        ]

    def texts(self) -> list[str]:
        return [doc["text"] for doc in self.documents() if "text" in doc]
