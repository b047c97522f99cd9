"""The ledger of acknowledged callbacks: what the ingress's enqueue script adds for each callback
it acknowledges (shared/stream.py), and the same arithmetic for `statuspipe verify`. Pure.

Per minute of the ingress's clock (the receive time it stamps on the entry, which also becomes
`message_events.received_at`), CELLS small Redis strings of four 64-bit sums each, updated with
one BITFIELD INCRBY. A callback lands in one cell, chosen by a hash of its (MessageSid,
MessageStatus), and adds: 1 to the count, a 64-bit checksum of the pair, and the sid's 128 bits as
two 64-bit halves, all modulo 2^64. Sums do not depend on order, so retries, takeovers and
batching cannot change them, and they subtract: acknowledged minus stored is again a sum. When a
cell's difference is one pair (k copies of it), dividing by k gives the sid back and the checksum
tells its status: that is how `verify` names what is missing or extra.

The stream id is not part of a term: the audit trail keeps one row per (sid, status), not one per
stream entry, so the stored side could not compute a term that includes it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

BUCKET_SECONDS = 60
CELLS = 8
WIDTH = 4  # sums per cell: count, checksum, sid high half, sid low half
MOD = 1 << 64

Sums = list[int]  # WIDTH values; the last three modulo 2^64

_SIGNED = struct.Struct(">qqq")


def bucket_of(received: float) -> int:
    """The bucket's start, in epoch seconds, of a receive time. PostgreSQL keeps microseconds:
    a callback within half a microsecond of a minute's end may fall in the next minute there,
    which `verify` sees as a difference that the next bucket cancels (like a late duplicate)."""
    return int(received // BUCKET_SECONDS) * BUCKET_SECONDS


def bucket_of_micros(micros: int) -> int:
    """The same from whole microseconds since the epoch (exact, for stored timestamps)."""
    return micros // (BUCKET_SECONDS * 1_000_000) * BUCKET_SECONDS


def cell_keys(stream_key: str, bucket: int) -> tuple[str, ...]:
    """The Redis keys of one minute's cells, by cell number."""
    return tuple(f"{stream_key}:ledger:{bucket}:{cell}" for cell in range(CELLS))


def _hash(sid: str, status: str) -> bytes:
    return hashlib.sha1(sid.encode() + b"\n" + status.encode()).digest()  # noqa: S324 - checksum


def ingress_term(sid: str, status: str) -> tuple[int, int, int, int]:
    """What the enqueue script needs for one callback: its cell, and its checksum and sid halves
    as signed 64-bit integers (BITFIELD's i64). Runs once per callback in the ingress."""
    h = _hash(sid, status)
    checksum, high, low = _SIGNED.unpack(h[:8] + bytes.fromhex(sid[2:]))
    return h[8] % CELLS, checksum, high, low


def term(sid: str, status: str) -> tuple[int, Sums]:
    """The cell and the sums (unsigned) one callback adds; the same values as ingress_term."""
    h = _hash(sid, status)
    digits = int(sid[2:], 16)
    return h[8] % CELLS, [1, int.from_bytes(h[:8], "big"), digits >> 64, digits & (MOD - 1)]


class Tally:
    """The sums of one bucket, per cell: a ledger bucket as read back, or the stored side."""

    __slots__ = ("cells",)

    def __init__(self) -> None:
        self.cells: dict[int, Sums] = {}

    @classmethod
    def from_cells(cls, values: list[bytes | None]) -> Tally:
        """A minute as MGET of its cell keys returns it: BITFIELD's big-endian fields, a short
        or missing string read as zeros, as BITFIELD reads it."""
        tally = cls()
        for cell, data in enumerate(values):
            if data:
                sums = list(struct.unpack(">QQQQ", data[: WIDTH * 8].ljust(WIDTH * 8, b"\0")))
                if any(sums):
                    tally.cells[cell] = sums
        return tally

    def add(self, sid: str, status: str, copies: int = 1) -> None:
        cell, sums = term(sid, status)
        mine = self.cells.setdefault(cell, [0] * WIDTH)
        for i, v in enumerate(sums):
            mine[i] = (mine[i] + v * copies) % MOD

    def merge(self, other: Tally) -> None:
        for cell, sums in other.cells.items():
            mine = self.cells.setdefault(cell, [0] * WIDTH)
            for i, v in enumerate(sums):
                mine[i] = (mine[i] + v) % MOD

    def count(self) -> int:
        return sum(signed(c[0]) for c in self.cells.values())

    def cell(self, index: int) -> Sums:
        return self.cells.get(index, [0] * WIDTH)


def signed(value: int) -> int:
    """A sum modulo 2^64 read as a signed number (a count difference can be negative)."""
    value %= MOD
    return value - MOD if value >= 1 << 63 else value


def difference(a: Sums, b: Sums) -> Sums:
    return [(x - y) % MOD for x, y in zip(a, b, strict=True)]


def add(a: Sums, b: Sums) -> Sums:
    return [(x + y) % MOD for x, y in zip(a, b, strict=True)]


def is_zero(sums: Sums) -> bool:
    return not any(v % MOD for v in sums)


def _divide(k: int, total: int) -> list[int]:
    """Every x with k * x = total modulo 2^64 (k != 0): one when k is odd, 2^s when k has s
    factors of two; none beyond 16, which no real difference reaches."""
    shift = (k & -k).bit_length() - 1
    if shift > 4 or total % (1 << shift):
        return []
    mod = MOD >> shift
    base = (total >> shift) * pow((k >> shift) % mod, -1, mod) % mod
    return [base + j * mod for j in range(1 << shift)]


def decode(sums: Sums, statuses: Iterable[str]) -> tuple[str, str, int] | None:
    """The one pair these sums are k copies of, as (sid, status, k), k negative for a surplus;
    None when they are not one pair (several pairs, or nothing). `statuses`: the values to try;
    the checksum tells which one it was."""
    k = signed(sums[0])
    if k == 0:
        return None
    statuses = list(statuses)
    for high in _divide(k % MOD, sums[2]):
        for low in _divide(k % MOD, sums[3]):
            digits = f"{(high << 64) | low:032x}"
            # Twilio's sids are lower-case hex; the ingress accepts either case.
            for sid in (f"SM{digits}", f"MM{digits}", f"SM{digits.upper()}", f"MM{digits.upper()}"):
                for status in statuses:
                    if [v * k % MOD for v in term(sid, status)[1]] == [v % MOD for v in sums]:
                        return sid, status, k
    return None
