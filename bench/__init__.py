"""``make bench``: Vigil measured against real peers on this machine, side by side, in one run.

``python -m bench [--scenario NAME[,NAME…]]`` runs the scenarios (agent, system, ingest,
detection, reads) and writes ``bench/results/<timestamp>.md`` and ``.json``. Every figure is the
median and spread (min/max) of several runs; knobs are ``BENCH_*`` environment variables (see
``bench/config.py``). Nothing here is imported by Vigil itself.
"""
