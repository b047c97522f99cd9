"""Storing batches of callbacks: one transaction each, idempotent (workers/store/batch.py).

`rows` lists each table's columns once; `collapse` turns callbacks into those rows; `receipts`
makes redelivery harmless; `postgres` (COPY) and `portable` (SQLAlchemy Core, for SQLite) write
them with the same rules.
"""

from workers.store.batch import BatchResult, DeadEntry, store_batch
from workers.store.receipts import purge_receipts

__all__ = ["BatchResult", "DeadEntry", "purge_receipts", "store_batch"]
