"""Development tools: what tests, `make bench` and the dev runner (`make run`) share.

Never imported by `ingest`, `workers` or `shared`, and not copied into the production image.
"""
