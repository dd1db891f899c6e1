"""The strong-scaling runner: everything ``python -m bench.strong_scaling`` does between the command line
and the record.

``config`` (the typed configuration and its parser), ``comm`` (the only module that owns MPI: ``World``),
``errors`` (one rank-aware way to end with ``error: ...``), ``backends`` (gradient averaging: none, mpi,
ddp, horovod), ``sampler`` (splits and per-rank epoch plans), ``data_setup`` (opening the events, batch
checks, device placement), ``prefetch`` and ``device_data`` (batches made on the host or on the device),
``train`` (the timed epoch, validation, scoring), ``speed`` (per-rank speed options), ``checkpoint``
(resume and model files), ``reduce`` (per-rank timings into the record), ``run`` (one measured run on one
world), ``environment`` (what the record says about the machine). No module here imports an entry point.
"""
