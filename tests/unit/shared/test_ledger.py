"""The ledger's arithmetic (shared/ledger.py) and the comparison `verify` makes with it
(workers/verify/compare.py). The enqueue script's half is checked against real Redis in
tests/integration/shared/test_ledger_script.py."""

from __future__ import annotations

import pytest

from shared import ledger
from shared.ledger import Tally
from workers.verify.compare import HORIZON_MINUTES, compare

SID = "SM" + "0123456789abcdef" * 2
OTHER = "MM" + "fedcba9876543210" * 2
M = ledger.BUCKET_SECONDS
STATUSES = ["sent", "delivered", "undelivered", "failed"]


def sums_of(*pairs: tuple[str, str, int]) -> ledger.Sums:
    tally = Tally()
    for sid, status, copies in pairs:
        tally.add(sid, status, copies)
    (sums,) = tally.cells.values()
    return sums


@pytest.mark.parametrize("copies", [1, 2, 3, 4, 7, 16, -1, -2, -5])
def test_k_copies_of_one_pair_decode_to_that_pair(copies):
    assert ledger.decode(sums_of((SID, "delivered", copies)), STATUSES) == (
        SID,
        "delivered",
        copies,
    )


def test_an_mm_sid_and_an_unknown_status_decode_when_the_status_is_offered():
    sums = sums_of((OTHER, "brand-new-status", 1))
    assert ledger.decode(sums, STATUSES) is None
    assert ledger.decode(sums, [*STATUSES, "brand-new-status"]) == (OTHER, "brand-new-status", 1)


def test_two_statuses_of_one_message_do_not_decode_as_either():
    sums = ledger.add(sums_of((SID, "sent", 1)), sums_of((SID, "delivered", 1)))
    assert ledger.decode(sums, STATUSES) is None


def test_sums_wrap_modulo_2_64_and_still_subtract_exactly():
    a, b = Tally(), Tally()
    for i in range(50):
        sid = f"SM{i:032x}"
        a.add(sid, "sent")
        if i != 17:
            b.add(sid, "sent")
    missing = Tally()
    missing.add(f"SM{17:032x}", "sent")
    (cell,) = missing.cells
    assert ledger.difference(a.cell(cell), b.cell(cell)) == missing.cell(cell)


def test_the_ingress_term_is_the_same_sums_as_term():
    cell, sums = ledger.term(SID, "delivered")
    got_cell, checksum, high, low = ledger.ingress_term(SID, "delivered")
    assert got_cell == cell
    assert [1, checksum % ledger.MOD, high % ledger.MOD, low % ledger.MOD] == sums


def test_buckets_are_minutes_of_the_receive_time():
    assert ledger.bucket_of(120.0) == 120
    assert ledger.bucket_of(179.999999) == 120
    assert ledger.bucket_of_micros(179_999_999) == 120
    assert ledger.bucket_of_micros(180_000_000) == 180


# --- compare: (acknowledged, accounted for) per minute -> what verify says -------------------


def tallies(spec: dict[int, list[tuple[str, str, int]]]) -> dict[int, Tally]:
    out: dict[int, Tally] = {}
    for minute, pairs in spec.items():
        tally = out.setdefault(minute * M, Tally())
        for sid, status, copies in pairs:
            tally.add(sid, status, copies)
    return out


def run(acked, accounted, minutes=30):
    return compare([m * M for m in range(minutes)], tallies(acked), tallies(accounted), STATUSES)


CASES = {
    "all stored": ({3: [(SID, "sent", 1)]}, {3: [(SID, "sent", 1)]}, [], [], 0),
    # A retry in the next minute: the audit row is filed under the first callback's minute.
    "retry across a minute": (
        {3: [(SID, "sent", 1)], 4: [(SID, "sent", 1)]},
        {3: [(SID, "sent", 2)]},
        [],
        [],
        1,
    ),
    # Later than the horizon: an extra run, then a missing one, netted per pair.
    "retry after the horizon": (
        {1: [(SID, "sent", 1)], 1 + HORIZON_MINUTES + 5: [(SID, "sent", 1)]},
        {1: [(SID, "sent", 2)]},
        [],
        [],
        1,
    ),
    "one lost": (
        {3: [(SID, "sent", 1), (OTHER, "sent", 1)]},
        {3: [(OTHER, "sent", 1)]},
        [(SID, "sent", 1)],
        [],
        0,
    ),
    "a duplicate lost": (
        {3: [(SID, "sent", 3)]},
        {3: [(SID, "sent", 2)]},
        [(SID, "sent", 1)],
        [],
        0,
    ),
    "stored, never acknowledged": ({}, {5: [(SID, "failed", 1)]}, [], [(SID, "failed", -1)], 0),
}


@pytest.mark.parametrize(("acked", "accounted", "missing", "extra", "balanced"), CASES.values(),
                         ids=CASES.keys())  # fmt: skip
def test_compare(acked, accounted, missing, extra, balanced):
    result = run(acked, accounted)
    assert [(n.sid, n.status, n.copies) for n in result.missing] == missing
    assert [(n.sid, n.status, n.copies) for n in result.extra] == [(s, st, c) for s, st, c in extra]
    assert result.unnamed == []
    assert result.balanced == balanced


def _same_cell_pair() -> tuple[str, str]:
    cell = ledger.term(SID, "sent")[0]
    for i in range(1000):
        sid = f"SM{i:032x}"
        if ledger.term(sid, "sent")[0] == cell:
            return SID, sid
    raise AssertionError("no sid in the same cell")


def test_two_messages_lost_in_one_cell_are_a_difference_verify_cannot_name():
    a, b = _same_cell_pair()
    result = run({3: [(a, "sent", 1), (b, "sent", 1)]}, {})
    assert result.named == []
    (unnamed,) = result.unnamed
    assert (ledger.signed(unnamed.difference[0]), unnamed.first, unnamed.ledger_empty) == (
        2,
        3 * M,
        False,
    )


def test_stored_rows_the_ledger_never_saw_are_marked_so():
    a, b = _same_cell_pair()
    (unnamed,) = run({}, {3: [(a, "sent", 1), (b, "sent", 1)]}).unnamed
    assert unnamed.ledger_empty
