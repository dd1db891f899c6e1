"""MLPerf-style training logs (``--mllog FILE``): ``:::MLLOG`` lines written through the ``mlperf-logging``
package (MLCommons), so that MLPerf's log tools read them.

One run, one log: what MLPerf Training's rules ask of a run (submission fields, cache clear, init start and
stop, run start and stop with a status, epoch and eval intervals with ``epoch_num``, eval accuracy, global
batch size, optimizer, base learning rate, gradient accumulation, train and eval samples, seed). The eval
accuracy is the validation AUC with physical weights. The run stops with status ``success`` when it reached
``--target-auc`` (or had none) and ``aborted`` when it did not. Rank 0 writes; elsewhere every call does
nothing. MLPerf's compliance checker knows only MLPerf's own benchmarks; docs/time-to-target.md says what
it accepts of these logs.
"""
from __future__ import annotations

import logging

from data.files import WriteError, append_whole

BENCHMARK = "multijet_cnn"  # not an MLPerf benchmark: the compliance checker's benchmark list lacks it


class _WholeLines(logging.Handler):
    """Each log line appended in one write, cut back when it fails (a full disk), so the log holds whole
    lines only; the failure raises data.files.WriteError naming --mllog, where logging's FileHandler would
    print a traceback and carry on without the line."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        try:
            append_whole(self.path, (self.format(record) + "\n").encode(), lock=False, sync=False)
        except WriteError as exc:
            raise exc.named("--mllog") from None


class MLLog:
    """The run's MLPerf log at ``path`` (empty: no log). Epoch numbers in the log count from 1. Every event
    raises data.files.WriteError naming --mllog when its line cannot be written."""

    def __init__(self, path: str, is_root: bool):
        self.enabled = bool(path) and is_root
        if not self.enabled:
            return
        from mlperf_logging import mllog  # optional: only with --mllog

        self.constants = mllog.constants
        logger = logging.getLogger(f"multijet.mllog.{path}")
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the file only, not the terminal
        if not logger.handlers:
            logger.addHandler(_WholeLines(path))
        mllog.config(logger=logger, default_stack_offset=2)
        self.log = mllog.get_mllogger()

    def _event(self, kind: str, key: str, value=None, **metadata) -> None:
        if self.enabled:
            getattr(self.log, kind)(key=key, value=value, metadata=metadata or None)

    def init_start(self, cfg, world_size: int, system: str, train_samples: int, eval_samples: int,
                   lr: float) -> None:
        """The submission fields and hyper-parameters, then ``init_start``."""
        if not self.enabled:
            return
        c = self.constants
        for key, value in ((c.SUBMISSION_BENCHMARK, BENCHMARK), (c.SUBMISSION_ORG, "multijet-scaling"),
                           (c.SUBMISSION_DIVISION, "open"), (c.SUBMISSION_STATUS, "research"),
                           (c.SUBMISSION_PLATFORM, f"{world_size}x{system}"), (c.CACHE_CLEAR, False),
                           (c.GLOBAL_BATCH_SIZE, cfg.global_batch), (c.OPT_NAME, cfg.optimizer),
                           (c.OPT_BASE_LR, lr),
                           (c.GRADIENT_ACCUMULATION_STEPS, cfg.global_batch // world_size // (
                               cfg.micro_batch or cfg.global_batch // world_size)),
                           (c.TRAIN_SAMPLES, train_samples), (c.EVAL_SAMPLES, eval_samples), (c.SEED, cfg.seed)):
            self._event("event", key, value)
        self._event("start", c.INIT_START)

    def run_start(self) -> None:
        if self.enabled:
            self._event("end", self.constants.INIT_STOP)
            self._event("start", self.constants.RUN_START)

    def epoch_start(self, epoch: int) -> None:
        if self.enabled:
            self._event("start", self.constants.EPOCH_START, epoch_num=epoch + 1)

    def epoch_stop(self, epoch: int) -> None:
        if self.enabled:
            self._event("end", self.constants.EPOCH_STOP, epoch_num=epoch + 1)

    def eval_start(self, epoch: int) -> None:
        if self.enabled:
            self._event("start", self.constants.EVAL_START, epoch_num=epoch + 1)

    def eval_stop(self, epoch: int, auc: float) -> None:
        if self.enabled:
            self._event("event", self.constants.EVAL_ACCURACY, auc, epoch_num=epoch + 1)
            self._event("end", self.constants.EVAL_STOP, epoch_num=epoch + 1)

    def run_stop(self, success: bool) -> None:
        if self.enabled:
            c = self.constants
            self._event("end", c.RUN_STOP, status=c.SUCCESS if success else c.ABORTED)
