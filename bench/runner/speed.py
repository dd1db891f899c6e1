"""Per-rank speed settings of the training step: memory format, mixed precision, torch.compile, the
optimizer's implementation and the CPU allocator. Each is a field of bench.runner.config.Config, so every record
says which were used; the defaults are the fastest measured on CPU (benchmarks/bench_step.py).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys

import torch

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_allocator_in_effect = "system"


def configure_cpu_allocator(choice: str) -> str:
    """``reuse``: glibc keeps freed memory for the next step instead of handing it back to the kernel.

    By default glibc serves every block over 32 MiB with its own mmap and unmaps it on free, so each
    training step page-faults its activations (hundreds of MB at 64x64, batch 256) back in, zeroed by
    the kernel: a quarter of the CPU time went to the kernel here, and first touches are dearer still
    on a virtual machine. With mmap off and trimming off, the
    blocks freed by one step are reused by the next. Process-wide; returns what is in effect (also put
    in the record). Not glibc: says so on stderr and leaves the system allocator.
    """
    global _allocator_in_effect
    if choice == "reuse" and _allocator_in_effect != "reuse":
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
            print("warning: --cpu-allocator reuse needs glibc's mallopt; using the system allocator "
                  "(recorded as cpu_allocator: system)", file=sys.stderr, flush=True)
            return _allocator_in_effect
        # -1: never trim (man mallopt); a finite threshold (an int, at most 2 GiB) is below one step's peak
        ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, -1)
        _allocator_in_effect = "reuse" if ok else _allocator_in_effect
    return _allocator_in_effect


def cpu_allocator_in_effect() -> str:
    return _allocator_in_effect


def memory_format(name: str) -> torch.memory_format:
    return torch.channels_last if name == "channels_last" else torch.contiguous_format


def optimizer_kwargs(impl: str) -> dict:
    """Keyword arguments of torch.optim.Adam/AdamW/SGD for ``impl``: one fused kernel over all tensors
    (``fused``), one multi-tensor op per term of the update (``foreach``), a loop over tensors (``loop``)."""
    return {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[impl]


def maybe_compile(model, enabled: bool):
    """torch.compile (inductor) of the training forward and backward, with static shapes; the first step
    pays the compilation (kept in the warm-up epoch).

    ``dynamic=False``: a second input shape in one process (bench_gpu.py measures 64x64, then 224x224)
    otherwise recompiles the shared forward with symbolic sizes, which ran 0.80x eager at 224x224 on an
    H100, against 1.8x for a static compilation (reports/reference/).
    """
    return torch.compile(model, dynamic=False) if enabled else model


class Precision:
    """Autocast and, for fp16, a GradScaler; ``none`` is plain fp32."""

    def __init__(self, amp: str = "none", device: torch.device = torch.device("cpu")):
        self.amp = amp
        self.device_type = device.type
        self.dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        self.scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, sync, optimizer) -> None:
        sync.step(optimizer, self.scaler)
        if self.scaler is not None:
            self.scaler.update()


def configure_device(device: torch.device) -> None:
    """What a competent GPU user turns on: cuDNN picks the fastest convolution algorithm for the fixed
    shapes of the run (TF32 for fp32 convolutions is PyTorch's default already)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
