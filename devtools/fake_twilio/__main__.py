"""`python -m devtools.fake_twilio`: the fake on a fixed port, for `make run` and the bench."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from devtools.fake_twilio.resources import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from devtools.fake_twilio.server import FakeTwilio
from shared.config import load_settings


def main(argv: list[str] | None = None) -> None:
    """`python -m devtools.fake_twilio`: serve until Ctrl-C or SIGTERM (for `make run`, bench)."""
    settings = load_settings()
    parser = argparse.ArgumentParser(
        prog="python -m devtools.fake_twilio", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default=settings.twilio_account_sid or DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=settings.twilio_auth_token or DEFAULT_AUTH_TOKEN)
    parser.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="PUBLIC=ACTUAL",
        help="post callbacks for PUBLIC (e.g. $PUBLIC_URL) to ACTUAL, signed for PUBLIC",
    )
    parser.add_argument(
        "--auto-deliver",
        nargs="?",
        const="delivered",
        metavar="FINAL",
        help="after each create, send sent then FINAL (default delivered) callbacks",
    )
    parser.add_argument("--number", action="append", default=[], help="seed a phone number")
    parser.add_argument(
        "--service", action="append", default=[], help="seed a Messaging Service sid"
    )
    args = parser.parse_args(argv)
    routes = dict(route.split("=", 1) for route in args.route)
    fake = FakeTwilio(
        args.port,
        host=args.host,
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        routes=routes,
    )
    for number in args.number:
        fake.add_phone_number(number)
    for sid in args.service:
        fake.add_messaging_service(sid=sid, phone_numbers=args.number)
    if args.auto_deliver:
        fake.auto_deliver(args.auto_deliver)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with fake:
        print(f"fake Twilio on {fake.base_url} (account {fake.account_sid})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
