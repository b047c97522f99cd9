"""Realistic callback traffic: sent then a final status, error codes, duplicates, reordering."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from cli.sample_callback import sign

ACCOUNT = "AC" + "0" * 31 + "1"
SERVICE = "MG" + "0" * 31 + "2"
# Final outcomes roughly as seen in production traffic; error codes from the reference.
FINALS = [("delivered", None)] * 88 + [
    ("undelivered", "30003"), ("undelivered", "30005"), ("undelivered", "30006"),
    ("undelivered", "30007"), ("undelivered", "30008"), ("failed", "30034"),
    ("failed", "21610"), ("undelivered", "30003"), ("failed", "30032"), ("undelivered", "30004"),
    ("undelivered", "30008"), ("failed", "21211"),
]  # fmt: skip


@dataclass(frozen=True)
class Callback:
    sid: str
    status: str
    fields: dict[str, str]
    token: str  # I-Twilio-Idempotency-Token

    @property
    def body(self) -> bytes:
        return urlencode(self.fields).encode()


def _fields(rng: random.Random, sid: str, to: str, status: str, code: str | None) -> dict[str, str]:
    fields = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "From": "+15005550001",
        "MessagingServiceSid": SERVICE,
        "To": to,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
    }
    if status in {"delivered", "undelivered"}:
        fields["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
    if code:
        fields["ErrorCode"] = code
    return fields


def callbacks(total: int, seed: int = 7, duplicates: float = 0.05) -> list[Callback]:
    """`total` callbacks: per message `sent` then a final status; ~5% exact duplicates (Twilio
    retries: same token) and ~10% of messages with the final status before `sent`."""
    rng = random.Random(seed)
    out: list[Callback] = []
    originals = int(total / (1 + duplicates))
    while len(out) < originals:
        sid = "SM" + uuid.UUID(int=rng.getrandbits(128)).hex
        to = f"+1555{rng.randrange(10**7):07d}"
        final, code = rng.choice(FINALS)
        pair = [
            Callback(
                sid,
                "sent",
                _fields(rng, sid, to, "sent", None),
                str(uuid.UUID(int=rng.getrandbits(128))),
            ),
            Callback(
                sid,
                final,
                _fields(rng, sid, to, final, code),
                str(uuid.UUID(int=rng.getrandbits(128))),
            ),
        ]
        if rng.random() < 0.10:
            pair.reverse()
        out += pair
    out = out[:originals]
    # Interleave messages as real traffic does, keeping each message's own order mostly intact.
    window = 200
    chunks = [out[i : i + window] for i in range(0, len(out), window)]
    for chunk in chunks:
        rng.shuffle(chunk)
    out = [cb for chunk in chunks for cb in chunk]
    while len(out) < total:
        out.insert(rng.randrange(len(out)), rng.choice(out))
    return out


def signature(url: str, cb: Callback, token: str) -> str:
    return sign(token, url, cb.fields)


def expected_counts(cbs: list[Callback]) -> tuple[int, int]:
    """(distinct messages, distinct (message, status) pairs) the database must end with."""
    return len({cb.sid for cb in cbs}), len({(cb.sid, cb.status) for cb in cbs})
