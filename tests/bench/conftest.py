"""The benchmarks are not tests: ``python -m tests.bench`` runs them.

Their files are named ``bench_*.py``, which pytest does not collect; this keeps it so
even when pytest is pointed at this folder or configured to collect more.
"""

collect_ignore_glob = ["*.py"]
