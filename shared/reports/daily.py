"""The daily report's one query, for any number of consecutive days (SQLAlchemy Core), and the
pieces the baseline query shares with it.

One statement returns two kinds of rows:
- `g`: per day, status, error code, sender and set of statuses seen, the number of messages and
  the sums the report needs (time to delivered, callbacks, reconciled). Grouping by the set of
  statuses seen (a handful of values) lets Python count them instead of every row in SQL;
- the percentiles of each day's time to delivered and callback latency, at the nearest rank:
  on PostgreSQL one `pct` row per day from `percentile_disc` (whose definition is exactly the
  nearest rank: the first value whose position is at least p x n); SQLite has no percentile
  function, so there the days' rows are read once into a CTE and ranked with ROW_NUMBER, and the
  `ttd` / `latency` rows are the values at the ranks wanted.
PostgreSQL reads the day's rows twice (the second time from cache) rather than materialising
them: on the bench's 5,000,000 messages that was the cheaper plan (bench/reports.py).
shared/reports/definitions.py turns the rows into the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from shared.models import Message
from shared.reports.definitions import (
    DELIVERED,
    FINAL,
    PERCENTILES,
    DayWindow,
    Group,
    Ranked,
    build_reports,
    percentile_rank,
)

# The percentile sorts of a busy day (~150,000 values each) spill to disk at PostgreSQL's
# default 4 MB; this is per sort, for the report's transaction only.
REPORT_WORK_MEM = "64MB"


def seconds_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    """`later - earlier` in seconds, as a float."""
    if dialect == "sqlite":
        # Stored as text; julianday reads it to the millisecond.
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    # date_part, not extract: extract returns numeric since PostgreSQL 14, much slower to sum.
    return func.date_part("epoch", later - earlier)


def day_bucket(windows: Sequence[DayWindow], created_at: Any) -> ColumnElement[Any]:
    """The index of the window holding `created_at`; the caller's WHERE keeps the span."""
    if len(windows) == 1:
        return literal(0)
    return case(*[(created_at < w.end, i) for i, w in enumerate(windows)], else_=None)


def in_span(windows: Sequence[DayWindow], created_at: Any) -> ColumnElement[bool]:
    return and_(created_at >= windows[0].start, created_at < windows[-1].end)


def _day_rows(windows: Sequence[DayWindow], dialect: str) -> Any:
    """The columns the report reads of each message of the days."""
    m = Message.__table__.c
    return select(
        day_bucket(windows, m.created_at).label("day"),
        m.status,
        m.error_code,
        m["from"].label("sender"),
        m.statuses_seen,
        case(
            (m.status.in_(DELIVERED), seconds_between(dialect, m.status_updated_at, m.created_at)),
            else_=None,
        ).label("ttd"),
        case(
            (
                and_(m.status.in_(FINAL), m.carrier_done_at.is_not(None)),
                seconds_between(dialect, m.status_updated_at, m.carrier_done_at),
            ),
            else_=None,
        ).label("latency"),
        m.callback_count,
        case((m.settled_by_reconcile, 1), else_=0).label("reconciled"),
    ).where(in_span(windows, m.created_at))


_NO_INT = cast(null(), Integer)
_NO_TEXT = cast(null(), String)
_NO_FLOAT = cast(null(), Float)
# The union's columns after `part` and `day`, in order; each part fills its own.
_COLUMNS = ("status", "error_code", "sender", "statuses_seen", "n", "ttd_sum", "ttd_count",
            "callbacks", "reconciled", "rn", "value", "latency_n", "ttd_p50", "ttd_p95",
            "latency_p50", "latency_p95")  # fmt: skip
_TYPES = {"status": _NO_TEXT, "sender": _NO_TEXT, "ttd_sum": _NO_FLOAT, "value": _NO_FLOAT,
          "ttd_p50": _NO_FLOAT, "ttd_p95": _NO_FLOAT, "latency_p50": _NO_FLOAT,
          "latency_p95": _NO_FLOAT}  # fmt: skip


def _part(part: str, day: Any, source: Any, **given: Any) -> Any:
    columns = [literal(part).label("part"), day.label("day")]
    columns += [given.get(c, _TYPES.get(c, _NO_INT)).label(c) for c in _COLUMNS]
    return select(*columns).select_from(source)


def _grouped(d: Any) -> Any:
    keys = (d.c.day, d.c.status, d.c.error_code, d.c.sender, d.c.statuses_seen)
    return _part(
        "g",
        d.c.day,
        d,
        status=d.c.status,
        error_code=d.c.error_code,
        sender=d.c.sender,
        statuses_seen=d.c.statuses_seen,
        n=func.count(),
        ttd_sum=cast(func.sum(d.c.ttd), Float),
        callbacks=func.sum(d.c.callback_count),
        reconciled=func.sum(d.c.reconciled),
    ).group_by(*keys)


def _postgres_percentiles(windows: Sequence[DayWindow]) -> Any:
    """One row per day. FILTER rather than the CASE columns of `_day_rows`: a difference is
    computed only for the rows that have one."""
    m = Message.__table__.c
    day = day_bucket(windows, m.created_at)
    ttd_of = and_(m.status.in_(DELIVERED), m.status_updated_at.is_not(None))
    latency_of = and_(
        m.status.in_(FINAL), m.carrier_done_at.is_not(None), m.status_updated_at.is_not(None)
    )
    ttd = seconds_between("postgresql", m.status_updated_at, m.created_at)
    latency = seconds_between("postgresql", m.status_updated_at, m.carrier_done_at)

    def at(pct: int, value: Any, where: Any) -> Any:
        return func.percentile_disc(pct / 100).within_group(value).filter(where)

    p50, p95 = PERCENTILES
    inner = (
        select(
            day.label("day"),
            func.count().filter(ttd_of).label("n"),
            at(p50, ttd, ttd_of).label("ttd_p50"),
            at(p95, ttd, ttd_of).label("ttd_p95"),
            func.count().filter(latency_of).label("latency_n"),
            at(p50, latency, latency_of).label("latency_p50"),
            at(p95, latency, latency_of).label("latency_p95"),
        )
        .where(in_span(windows, m.created_at))
        # One day is a constant: GROUP BY would read it as a column position.
        .group_by(*([day] if len(windows) > 1 else []))
        .subquery("p")
    )
    return _part(
        "pct",
        inner.c.day,
        inner,
        n=inner.c.n,
        ttd_p50=inner.c.ttd_p50,
        ttd_p95=inner.c.ttd_p95,
        latency_n=inner.c.latency_n,
        latency_p50=inner.c.latency_p50,
        latency_p95=inner.c.latency_p95,
    )


def _ranked(d: Any, part: str) -> Any:
    value = d.c[part]
    ranked = (
        select(
            d.c.day,
            value.label("value"),
            func.row_number().over(partition_by=d.c.day, order_by=value).label("rn"),
            func.count().over(partition_by=d.c.day).label("n"),
        )
        .where(value.is_not(None))
        .subquery(f"ranked_{part}")
    )
    # ceil(n * p / 100) in integers, as percentile_rank computes it.
    wanted = [ranked.c.rn == (ranked.c.n * p + 99) // 100 for p in PERCENTILES]
    return _part(
        part, ranked.c.day, ranked, n=ranked.c.n, rn=ranked.c.rn, value=ranked.c.value
    ).where(or_(*wanted))


def daily_statement(windows: Sequence[DayWindow], dialect: str) -> Any:
    rows = _day_rows(windows, dialect)
    if dialect == "postgresql":
        return _grouped(rows.subquery("d")).union_all(_postgres_percentiles(windows))
    d = rows.cte("d")
    return _grouped(d).union_all(_ranked(d, "ttd"), _ranked(d, "latency"))


def _bits(statuses_seen: int | None) -> int:
    return bin(statuses_seen or 0).count("1")


def daily_rows(session: Session, windows: Sequence[DayWindow]) -> tuple[list[Group], list[Ranked]]:
    """Run the query over `windows` (consecutive days, oldest first)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
    groups: list[Group] = []
    ranked: list[Ranked] = []
    for row in session.execute(daily_statement(windows, dialect)):
        if row.part == "g":
            groups.append(
                Group(
                    day=row.day,
                    status=row.status,
                    error_code=row.error_code,
                    sender=row.sender,
                    messages=row.n,
                    ttd_sum=float(row.ttd_sum or 0.0),
                    # Every delivered or read message has a status time: no count(ttd).
                    ttd_count=row.n if row.status in DELIVERED else 0,
                    callbacks=int(row.callbacks or 0),
                    statuses=_bits(row.statuses_seen) * row.n,
                    reconciled=int(row.reconciled or 0),
                )
            )
        elif row.part == "pct":
            for part, n, values in (
                ("ttd", row.n, (row.ttd_p50, row.ttd_p95)),
                ("latency", row.latency_n, (row.latency_p50, row.latency_p95)),
            ):
                for pct, value in zip(PERCENTILES, values, strict=True):
                    if value is not None:
                        rank = percentile_rank(n, pct)
                        ranked.append(Ranked(part, row.day, n, rank, float(value)))
        else:
            ranked.append(Ranked(row.part, row.day, row.n, row.rn, float(row.value)))
    return groups, ranked


def daily_reports(
    session: Session,
    windows: Sequence[DayWindow],
    timezone: str,
    classify: Callable[[int | None], str],
) -> list[dict[str, Any]]:
    """The reports of `windows`, oldest first; `classify` names an error code's action."""
    groups, ranked = daily_rows(session, windows)
    return build_reports(windows, timezone, groups, ranked, classify)
