"""Reconciliation: fetch from Twilio's API the messages whose callbacks may be lost, and store
what Twilio says as callbacks are stored (rank-guarded), as events whose source is `reconcile`.

`candidates` picks the messages, `apply` stores one answer, `run` fetches a bounded,
rate-limited batch and stops at a 429, `tasks` is the beat job of the `actions` role.
"""
