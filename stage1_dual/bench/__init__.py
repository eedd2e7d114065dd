"""Stage-1 benchmark: encoding throughput and index search speed / recall (``scripts/bench_stage1.py``)."""
