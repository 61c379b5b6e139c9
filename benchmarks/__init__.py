"""Runnable benchmarks for issue #6 (not tests): `python -m benchmarks` or `make bench`.

Each benchmark runs the real stack (daphne, an RQ worker, Redis, SQLite and PostgreSQL) in
child processes and prints the project's figure beside a baseline measured in the same run.
"""
