"""Compare the ledger with what is stored, minute by minute and cell by cell. Pure.

For each cell, the minutes are walked in order, summing acknowledged-minus-accounted-for (stored,
dead-lettered, still queued). A zero difference is agreement. A difference that a later minute
cancels is agreement too: the audit trail files a pair's callbacks under its first receive time,
so a Twilio retry in the next minute is one callback early on the stored side and one late on
the ledger's; such a run closes within a few minutes. A run still open after HORIZON minutes, or
at the end, is a disagreement: its difference is decoded into the callbacks it is made of when
it is one (sid, status) pair, k copies of it (shared/ledger.py), and then netted per pair across
runs (a retry more than HORIZON minutes late shows as an extra in one run and a missing one in a
later run, and cancels here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared import ledger
from shared.ledger import Sums, Tally

HORIZON_MINUTES = 10


@dataclass(slots=True)
class Run:
    """Minutes of one cell whose differences do not cancel out."""

    cell: int
    first: int  # bucket starts, epoch seconds
    last: int
    difference: Sums  # acknowledged minus accounted for
    ledger_empty: bool  # the ledger had nothing in this cell over the run


@dataclass(slots=True)
class Named:
    """Callbacks of one (sid, status) pair the ledger and the store disagree on."""

    sid: str
    status: str
    copies: int  # > 0: acknowledged, not accounted for; < 0: stored, not in the ledger
    runs: list[Run] = field(default_factory=list)


@dataclass(slots=True)
class Comparison:
    named: list[Named]  # nets that are not zero
    unnamed: list[Run]  # differences of more than one pair
    balanced: int  # runs that cancelled out (late duplicates, clocks)

    @property
    def missing(self) -> list[Named]:
        return [n for n in self.named if n.copies > 0]

    @property
    def extra(self) -> list[Named]:
        return [n for n in self.named if n.copies < 0]


def _runs(
    buckets: list[int], ledger_side: Mapping[int, Tally], stored_side: Mapping[int, Tally]
) -> tuple[list[Run], int]:
    open_runs: list[Run] = []
    balanced = 0
    empty = Tally()
    for cell in range(ledger.CELLS):
        run: Run | None = None
        for bucket in buckets:
            acked = ledger_side.get(bucket, empty).cell(cell)
            diff = ledger.difference(acked, stored_side.get(bucket, empty).cell(cell))
            if run is None:
                if ledger.is_zero(diff):
                    continue
                run = Run(cell, bucket, bucket, diff, ledger.is_zero(acked))
            else:
                run.difference = ledger.add(run.difference, diff)
                run.last = bucket
                run.ledger_empty = run.ledger_empty and ledger.is_zero(acked)
            if ledger.is_zero(run.difference):
                balanced += 1
                run = None
            elif bucket - run.first >= HORIZON_MINUTES * ledger.BUCKET_SECONDS:
                open_runs.append(run)
                run = None
        if run is not None:
            open_runs.append(run)
    return open_runs, balanced


def compare(
    buckets: list[int],
    ledger_side: Mapping[int, Tally],
    stored_side: Mapping[int, Tally],
    statuses: Iterable[str],
) -> Comparison:
    """`buckets`: every minute to walk, in order; `stored_side`: what is stored, dead-lettered
    or still queued, filed under the same minutes; `statuses`: the values to try when naming."""
    statuses = sorted(set(statuses))
    runs, balanced = _runs(buckets, ledger_side, stored_side)
    nets: dict[tuple[str, str], Named] = {}
    unnamed: list[Run] = []
    for run in runs:
        pair = ledger.decode(run.difference, statuses)
        if pair is None:
            unnamed.append(run)
            continue
        sid, status, copies = pair
        named = nets.setdefault((sid, status), Named(sid, status, 0))
        named.copies += copies
        named.runs.append(run)
    named_left = [n for n in nets.values() if n.copies]
    balanced += len(nets) - len(named_left)
    return Comparison(named_left, unnamed, balanced)
