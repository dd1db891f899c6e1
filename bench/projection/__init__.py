"""The performance projection: one training step at N ranks from a calibrated model.

``model`` (the compute and alpha-beta allreduce fits, profiles, the step at N ranks), ``calibrate``
(measuring compute and allreduce on this machine), ``allreduce`` (the ``mpirun`` child that times
``Allreduce``), ``plot`` (the projected curves), ``cli`` (``python -m bench.projection``). The method and its
assumptions are in docs/projection.md.
"""
