"""One typed configuration for a benchmark run; the command line mirrors it field by field.

Precedence: field defaults < preset < flags given on the command line. The resolved configuration is
written into every record.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields

import models
from bench.runner import augment
from data.base import NORMALISATIONS

# The allowed values of each choice, kept with its field (``choices`` below): --help lists them and the
# parser refuses anything else.
BACKENDS = ("auto", "none", "mpi", "ddp", "horovod")
DEVICES = ("cpu", "cuda")
DATA_PLACEMENTS = ("auto", "host", "device")
OPTIMIZERS = ("adam", "adamw", "sgd", "lamb", "lars")
LR_SCALINGS = ("none", "linear")
MEMORY_FORMATS = ("channels_last", "contiguous")
AMP = ("none", "bf16", "fp16")
OPTIMIZER_IMPLS = ("fused", "foreach", "loop")
CPU_ALLOCATORS = ("reuse", "system")
LR_DECAYS = ("none", "cosine", "step")
KEEPS = ("last", "best")
ON_OFF_AUTO = ("auto", "on", "off")


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class Config:
    model: str = _f("circpad", "model: the study's circular-padding CNN (circpad), the compact CNN, or one of "
                               "torchvision's (their own environment: README, 'Standard image models')",
                    choices=tuple(models.available()))
    image_size: int = _f(64, "image height = width in pixels; divisible by 8 for circpad and compact, at least "
                             "32 for resnet50, densenet121, mobilenet_v2 and 75 for inception_v3")
    circular_phi: bool = _f(False, "pad every convolution of a torchvision model circularly in phi (the study's "
                                   "CNNs always do)", flag=True)
    data: str = _f("synthetic", "'synthetic' for the embedded toy, or the path of an HDF5 event store")
    btag_channel: bool = _f(False, "a fourth image channel with the b-tagged jets' positions (data/btag.py); "
                                   "needs a store with jets (format version 3); the study's three channels "
                                   "without it", flag=True)
    normalisation: str = _f("max", "image normalisation (data.base.normalise)", choices=NORMALISATIONS)
    global_batch: int = _f(32768, "images per optimizer step over all ranks (held fixed: strong scaling)")
    micro_batch: int = _f(0, "images per forward/backward on a rank; below the per-rank batch the "
                             "gradients are accumulated (0: the whole per-rank batch at once)")
    epochs: int = _f(3, "epochs; the first is a warm-up timed apart, so at least 2 give a measured epoch")
    train_events: int = _f(65536, "training events per epoch (synthetic), or at most this many from the "
                                  "file's training split (0: all of it)")
    val_events: int = _f(8192, "validation events (synthetic), or at most this many from the file (0: all)")
    split: str = _f("0.6,0.2,0.2", "a file's training, validation and test fractions (the study's 60/20/20), a "
                                   "random split of its events drawn from --seed; --train-events and "
                                   "--val-events then take random subsets of the first two")
    optimizer: str = _f("adam", "optimizer (sgd and lars with momentum 0.9; lamb and lars: "
                                "bench/runner/optimizers.py)", choices=OPTIMIZERS)
    lr: float = _f(1e-3, "learning rate (at --lr-base-batch with --lr-scaling linear)")
    lr_scaling: str = _f("none", "learning rate against the global batch: none, or linear: --lr x global batch "
                                 "/ --lr-base-batch (Goyal et al. 2017)", choices=LR_SCALINGS)
    lr_base_batch: int = _f(256, "the global batch --lr is meant for, with --lr-scaling linear")
    lr_warmup_epochs: float = _f(0.0, "linear learning-rate warm-up from lr/10 over this many epochs "
                                      "(Goyal et al. 2017); 0: none")
    lr_decay: str = _f("none", "learning-rate decay after the warm-up: none (constant), cosine (half a cosine "
                               "from --lr to 0 at the end of the last epoch; Loshchilov & Hutter 2017), step "
                               "(x0.1 at half and x0.01 at three quarters of the epochs after the warm-up)",
                       choices=LR_DECAYS)
    keep: str = _f("last", "the weights scored on the test split and saved by --save-model: last (the final "
                           "epoch's) or best (the epoch of lowest validation loss, the study's choice); the "
                           "record's kept_epoch says which", choices=KEEPS)
    augment: str = _f("none", "symmetry augmentation of the training images (bench/runner/augment.py): none, "
                              "all, or a comma-separated list of roll-phi, flip-eta, flip-phi; drawn from "
                              "--seed; works on the sparse device cache (--data-placement auto picks it)")
    dropout: float = _f(0.5, "dropout probability (0 turns dropout off)")
    bn_momentum: float = _f(0.0, "BatchNorm momentum, PyTorch convention (Keras 0.99 = 0.01); 0: the model's own, "
                                 "0.01 for circpad (the study's Keras 0.99), PyTorch's 0.1 for torchvision's models")
    threads: int = _f(0, "torch threads per rank (0: the cores this node lets its ranks use, by CPU affinity "
                         "and cgroup quota, shared among its ranks)")
    device: str = _f("cpu", "where the model trains", choices=DEVICES)
    memory_format: str = _f("channels_last", "layout of images and feature maps (weights keep the default "
                                             "layout)", choices=MEMORY_FORMATS)
    amp: str = _f("auto", "mixed precision: none (fp32, the study's), bf16 (autocast; cpu or cuda), fp16 "
                          "(autocast with a GradScaler; cuda only), auto (bf16 on cuda; on cpu bf16 where the CPU "
                          "has a bf16 unit, AMX or AVX512_BF16, and docs/precision.md shows bf16 costs no AUC, "
                          "else none)", choices=AMP + ("auto",))
    amp_why: str = field(default="", metadata={"internal": True})  # how amp was chosen (resolve_auto), not a flag
    data_placement: str = _f("auto", "where the images of a step are made: host (a background thread, copied "
                                     "in), device (the run's events preloaded on the device as lit pixels, "
                                     "batches built there; bench/runner/device_data.py), auto (device on cuda, "
                                     "host on cpu)", choices=DATA_PLACEMENTS)
    compile: str = _f("auto", "torch.compile the model for training (the warm-up epoch pays the compilation): "
                              "on (also plain --compile), off, auto (on with cuda, off on cpu; README, 'Per-rank "
                              "speed')", const="on", choices=ON_OFF_AUTO)
    optimizer_impl: str = _f("fused", "optimizer kernels: fused (one kernel for all tensors), foreach, loop",
                             choices=OPTIMIZER_IMPLS)
    cpu_allocator: str = _f("reuse", "reuse: glibc keeps freed memory for the next step (no mmap per big "
                                     "tensor); system: glibc defaults (bench/runner/speed.py)",
                            choices=CPU_ALLOCATORS)
    backend: str = _f("auto", "gradient averaging: auto (horovod if installed, else mpi; none for one "
                              "process), none, mpi, ddp, horovod", choices=BACKENDS)
    target_auc: float = _f(0.0, "validation AUC (physical weights) to reach: the record gains epochs_to_target "
                                "and time_to_target_s (0: no target)")
    stop_at_target: bool = _f(False, "end the run after the first epoch that reaches --target-auc", flag=True)
    mllog: str = _f("", "write MLPerf-style ':::MLLOG' lines (mlperf-logging) to this file (empty: none)")
    seed: int = _f(1234, "seed of data order, initial weights and the synthetic events")
    prefetch: int = _f(2, "batches prepared ahead by the background loader")
    out: str = _f("results/records.jsonl", "JSON-lines file the run record is appended to")
    save_model: str = _f("", "write the final weights and the configuration to this path, for "
                             "bench.evaluate ({ranks} is replaced by the world size; in a sweep without it "
                             "-<N>ranks is added before the suffix; empty: do not)")
    system: str = _f("", "name of this machine kind in the records (empty: the CPU model or GPU name)")
    sweep: bool = _f(False, "measure every power of two of ranks up to the allocation (plus its size), "
                            "each on its own sub-communicator, one record each", flag=True)
    sweep_id: str = _f("", "id shared by the records of one sweep (empty: a new one); with --resume, the "
                            "points of this sweep already in --out are skipped")
    checkpoint: str = _f("", "save model, optimizer and epoch results to this path after every epoch "
                             "(the world size is appended); with --resume, continue from it")
    resume: bool = _f(False, "continue: skip sweep points already recorded, and restart a run from its "
                             "--checkpoint", flag=True)
    preset: str = _f("custom", "quick (smoke-sized main job), paper (the reference study), custom",
                     choices=("custom", "quick", "paper"))

    @property
    def label(self) -> str:
        return {"quick": "quick: smoke-sized run for laptops and CI, not a benchmark",
                "paper": "paper: the reference study's configuration"}.get(self.preset, "custom")


PRESETS: dict[str, dict] = {
    "custom": {},
    # Finishes in a few minutes on a 2-core laptop; small images, small batch. Not a benchmark.
    "quick": dict(image_size=32, global_batch=512, epochs=3, train_events=4096, val_events=1024,
                  bn_momentum=0.1),
    # The KISTI study: 224x224 images, 32K global batch, ~450k/150k events, 50 epochs, fp32.
    "paper": dict(image_size=224, global_batch=32768, epochs=50, train_events=450_000,
                  val_events=150_000, amp="none", amp_why="preset paper: the study's fp32"),
}


def split_fractions_of(text: str) -> tuple[float, float, float]:
    """The three fractions of ``--split`` ('train,val,test'; they need not sum to 1, they are normalised).
    Raises ValueError saying what is wrong."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not three comma-separated numbers (train,val,test)") from None
    if len(values) != 3:
        raise ValueError(f"{text!r} has {len(values)} fractions, not three (train,val,test)")
    if not all(0 < v < float("inf") for v in values):
        raise ValueError(f"{text!r}: each fraction must be a positive finite number")
    return values


class UsageError(ValueError):
    """Bad command-line input; the message names the flag. Exit status 2."""


def sweep_sizes(n: int) -> list[int]:
    """World sizes of ``--sweep`` on ``n`` ranks: every power of two up to ``n``, then ``n`` itself."""
    sizes = [1 << k for k in range(n.bit_length())]
    return sizes + ([n] if sizes[-1] != n else [])


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.strong_scaling",
        description="Train a detector-image CNN at a fixed global batch and append one record per run. "
                    "Run under mpirun/srun/mpiexec for data-parallel training.",
        argument_default=argparse.SUPPRESS)  # so that only flags typed by the user override the preset
    for f in fields(Config):
        meta = f.metadata
        if meta.get("internal"):
            continue
        choices = meta.get("choices")
        shown = f" (choices: {', '.join(choices)}; default: {f.default})" if choices else f" (default: {f.default})"
        if meta.get("flag"):
            parser.add_argument(flag_name(f.name), action="store_true", help=meta["help"])
        elif "const" in meta:  # a choice whose flag alone means ``const``
            parser.add_argument(flag_name(f.name), nargs="?", const=meta["const"], choices=choices,
                                metavar=f.name.upper(), help=meta["help"] + shown)
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            parser.add_argument(flag_name(f.name), type=kind, choices=choices, metavar=f.name.upper(),
                                help=meta["help"] + shown)
    return parser


def parse_config(argv: list[str] | None = None) -> Config:
    """Parse the command line into a validated Config. Raises UsageError naming the flag."""
    given = vars(build_parser().parse_args(argv))
    preset = given.get("preset", "custom")
    chosen = {k: v for k, v in PRESETS[preset].items() if not (k == "amp_why" and "amp" in given)}
    cfg = Config(**{**chosen, **given})
    validate(cfg)
    return resolve_auto(cfg)


# docs/precision.md: bf16 against fp32 on the reference store, three seeds each (the records are
# reports/reference/precision/records.jsonl; ``python -m benchmarks.precision_accuracy`` gives the verdict).
# True would keep CPUs at fp32 under ``--amp auto``; the table shows bf16's test AUC within the seeds' spread.
BF16_COSTS_AUC = False


def auto_amp(device: str, info: dict | None = None) -> tuple[str, str]:
    """(amp, why) of ``--amp auto`` on ``device``: bf16 on cuda; on a CPU (``info``: /proc/cpuinfo's first
    processor, read when None) bf16 where it has a bf16 unit (AMX tiles or AVX512_BF16) and
    ``BF16_COSTS_AUC`` is False, else none (fp32)."""
    if device == "cuda":
        return "bf16", "auto: bf16 on cuda"
    from bench.projection.ceilings import ceiling_unit
    from bench.runner.environment import cpuinfo

    unit = ceiling_unit(cpuinfo() if info is None else info, "bf16")
    if unit.precision != "bf16":
        return "none", "auto: fp32, this CPU has no bf16 unit (AMX or AVX512_BF16)"
    if BF16_COSTS_AUC:
        return "none", (f"auto: fp32; this CPU has {unit.name}, but bf16 is not shown to cost no AUC "
                        "(docs/precision.md)")
    return "bf16", f"auto: bf16 through {unit.name} (docs/precision.md: no AUC cost beyond the seeds' spread)"


def resolve_auto(cfg: Config) -> Config:
    """``auto`` choices made concrete for the device, so that the record says what ran (and, in
    ``amp_why``, how the precision was chosen)."""
    gpu = cfg.device == "cuda"
    amp, why = auto_amp(cfg.device) if cfg.amp == "auto" else (cfg.amp, cfg.amp_why or f"asked: --amp {cfg.amp}")
    return dataclasses.replace(
        cfg,
        amp=amp, amp_why=why,
        compile=("on" if gpu else "off") if cfg.compile == "auto" else cfg.compile,
        data_placement=("device" if gpu or augment.parse(cfg.augment) else "host")
        if cfg.data_placement == "auto" else cfg.data_placement,
        bn_momentum=cfg.bn_momentum or models.default_bn_momentum(cfg.model))


def validate(cfg: Config) -> None:
    """Checks that need no MPI and no data: all ranks reach the same verdict before any work.

    Raises UsageError naming the flag. Choices are checked here too, for a Config not made by the parser.
    """
    for f in fields(Config):
        choices = f.metadata.get("choices")
        if choices and getattr(cfg, f.name) not in choices:
            raise UsageError(f"{flag_name(f.name)}: unknown value {getattr(cfg, f.name)!r}; "
                             f"choose from {', '.join(choices)}")
    positive = ("image_size", "global_batch", "epochs", "lr", "prefetch", "lr_base_batch")
    for name in positive:
        if getattr(cfg, name) <= 0:
            raise UsageError(f"{flag_name(name)} must be positive, got {getattr(cfg, name)}")
    for name in ("micro_batch", "train_events", "val_events", "threads", "lr_warmup_epochs"):
        if getattr(cfg, name) < 0:
            raise UsageError(f"{flag_name(name)} must not be negative, got {getattr(cfg, name)}")
    try:
        split_fractions_of(cfg.split)
    except ValueError as exc:
        raise UsageError(f"--split: {exc}") from None
    try:
        transforms = augment.parse(cfg.augment)
    except ValueError as exc:
        raise UsageError(f"--augment: {exc}") from None
    if transforms and cfg.data_placement == "host":
        raise UsageError("--augment works on the sparse device cache: use --data-placement device or auto, "
                         "not host")
    try:
        models.check_image_size(cfg.model, cfg.image_size)
    except ValueError as exc:
        raise UsageError(f"--image-size: {exc}") from None
    if cfg.circular_phi and not models.is_torchvision(cfg.model):
        raise UsageError(f"--circular-phi applies to the torchvision models; {cfg.model} always pads "
                         "circularly in phi")
    if cfg.micro_batch and cfg.global_batch % cfg.micro_batch:
        raise UsageError(f"--global-batch {cfg.global_batch} is not divisible by --micro-batch {cfg.micro_batch}")
    if not 0.0 <= cfg.bn_momentum <= 1.0:
        raise UsageError(f"--bn-momentum must be in [0, 1] (0: the model's own), got {cfg.bn_momentum}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UsageError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.amp == "fp16" and cfg.device != "cuda":
        raise UsageError("--amp fp16 needs --device cuda (fp16 on a CPU is slow and needs loss scaling); "
                         "use --amp bf16 or --amp none on cpu")
    if not 0.0 <= cfg.target_auc <= 1.0:
        raise UsageError(f"--target-auc must be an AUC in (0, 1] (0: none), got {cfg.target_auc}")
    if cfg.stop_at_target and not cfg.target_auc:
        raise UsageError("--stop-at-target needs --target-auc")
    if cfg.resume and not (cfg.sweep_id or cfg.checkpoint):
        raise UsageError("--resume needs --sweep-id (to skip recorded sweep points) or --checkpoint")
    if cfg.data == "synthetic" and cfg.train_events == 0:
        raise UsageError("--train-events must be positive with --data synthetic")
    if cfg.data == "synthetic" and cfg.val_events == 0:
        raise UsageError("--val-events must be positive with --data synthetic")


def learning_rate(cfg: Config) -> float:
    """The learning rate the run uses: --lr, scaled by global batch / --lr-base-batch with --lr-scaling linear
    (Goyal et al., "Accurate, Large Minibatch SGD", arXiv:1706.02677, section 2.1)."""
    return cfg.lr * (cfg.global_batch / cfg.lr_base_batch if cfg.lr_scaling == "linear" else 1.0)


def as_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(d: dict) -> Config:
    """The Config a record or model file was written with; fields this version lacks are dropped and
    fields it added since take their defaults."""
    known = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in d.items() if k in known})
