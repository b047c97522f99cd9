"""`statuspipe verify`: the ingress's ledger of acknowledged callbacks against the audit trail,
the dead letters and the queue (check.py reads and reports, compare.py compares, sources.py
reads)."""

from workers.verify.check import Verification, verify

__all__ = ["Verification", "verify"]
