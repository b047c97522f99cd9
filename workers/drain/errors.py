"""Which database errors are about the rows (dead-letter them) and which about the database
(wait for it)."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc


def is_data_error(exc: BaseException) -> bool:
    """Errors that one bad row causes and that retrying the same rows will not fix: the
    database's data and integrity errors (SQLSTATE classes 22 and 23), and a value that could not
    even be bound. Anything else the database says (a read-only standby, a disk-full database,
    a missing table) is about the database, not the rows: the batch waits, nothing is
    dead-lettered for it."""
    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError):
        return True
    return isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError)
