"""Benchmarks beside the product (`make bench`): each module is one short script that prints its
table and writes results/<name>.json; `python -m benchmarks.write` turns those into BENCHMARKS.md."""
