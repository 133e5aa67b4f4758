"""Benchmarks: novad against the upstream anchor, same run, same fixtures, real-time pace.

Run with ``python -m bench.run`` (``make bench``); it writes ``bench/RESULTS.md`` and
``bench/results.json``.
"""
