"""Reports from run records: tables, figures and a one-page report.

Reads the JSON-lines records that ``bench.strong_scaling`` appends (``docs/records.md``) and
nothing else: no module here imports torch, mpi4py or horovod, so reports can be built on a
laptop from records copied off the cluster. Entry point: ``python -m reports.build``;
``reports.load_frame(paths)`` gives the records as a pandas DataFrame (``reports/frame.py``).
"""
from reports.frame import load_frame

__all__ = ["load_frame"]
