"""Regenerate the record fixtures of tests/test_reports_*.py: ``python tests/records/make_fixtures.py``.

The epoch times are chosen so that each run's median is a round number; the tests work out the expected
speedups, efficiencies and GPU ratios from those numbers by hand. Change them here and there together.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
import json, itertools
counter = itertools.count(1)
def rec(system, device, backend, nodes, epochs, *, world_size=None, preset="paper", projected=None,
        cpu_model="Intel Xeon Phi 7250", auc=(0.95, 0.975, 0.98), day="2026-11-01", rpn=1, **extra):
    ws = world_size or nodes * rpn
    ge = 32768 * 14
    from statistics import median
    r = {
        "schema_version": 1, "run_id": f"{next(counter):08x}", "sweep_id": f"sweep-{system}",
        "timestamp": f"{day}T12:00:00Z", "git_rev": "0b480f4", "system": system, "preset": preset,
        "label": "smoke-sized, not a benchmark" if preset == "quick" else "",
        "config": {"epochs": len(epochs) + 1, "global_batch": 32768},
        "backend": backend, "world_size": ws, "nodes": nodes, "ranks_per_node": rpn,
        "threads_per_rank": 68 if device == "cpu" else 1, "device": device,
        "device_name": cpu_model if device == "cpu" else "NVIDIA TITAN RTX",
        "model": "circpad", "model_params": 9350000, "image_size": 64, "global_batch": 32768,
        "per_rank_batch": 32768 // ws, "micro_batch": min(1024, 32768 // ws),
        "accumulation_steps": max(1, (32768 // ws) // 1024), "steps_per_epoch": 14,
        "train_events": ge, "val_events": 150000,
        "data": {"kind": "synthetic"}, "batchnorm": "per_rank",
        "warmup_epoch_s": (epochs[0] if epochs else 5.0) * 1.3, "epoch_s": list(epochs),
        "images_per_s": ge / median(epochs) if epochs else None,
        "step_s_median": (median(epochs) if epochs else 1) / 14, "step_s_max_rank": (median(epochs) if epochs else 1) / 14 * 1.02,
        "compute_s": (median(epochs) if epochs else 0) * 0.8, "comm_s": (median(epochs) if epochs else 0) * 0.15,
        "data_wait_s": (median(epochs) if epochs else 0) * 0.03,
        "auc": list(auc), "val_loss": [0.4, 0.3, 0.25], "peak_rss_bytes": 8 * 2**30,
        "env": {"hosts": [f"node{i:04d}" for i in range(nodes)], "cpu_model": cpu_model, "cpu_count": 68,
                "mem_bytes": 96 * 2**30, "python": "3.11.9", "torch": "2.13.0" if device == "cpu" else "2.13.0+cu128",
                "numpy": "2.4.6", "mpi_library": "Open MPI v4.1.4" if backend != "none" else None,
                "mpi4py": "4.1.2", "horovod": "0.28.1" if backend == "horovod" else None, "os": "Linux",
                "cuda": "12.8" if device == "cuda" else None, "gpu_name": "NVIDIA TITAN RTX" if device == "cuda" else None},
    }
    if projected is not None:
        r["projected"] = projected
    r.update(extra)
    return r

def dump(name, recs, tail=""):
    with open(HERE / name, "w") as fh:
        for r in recs:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
        fh.write(tail)

# Run medians per point (epoch lists chosen so each run's median is a round number).
knl = [
    rec("knl", "cpu", "horovod", 1, [100, 99, 101]), rec("knl", "cpu", "horovod", 1, [104, 104]),
    rec("knl", "cpu", "horovod", 1, [98]),
    rec("knl", "cpu", "horovod", 2, [52, 52]), rec("knl", "cpu", "horovod", 2, [50, 49, 51]),
    rec("knl", "cpu", "horovod", 4, [26]), rec("knl", "cpu", "horovod", 4, [25]), rec("knl", "cpu", "horovod", 4, [27]),
    rec("knl", "cpu", "horovod", 8, [14, 14]), rec("knl", "cpu", "horovod", 8, [16, 16], auc=(0.9, 0.96)),
    # A performance model's projection beyond the measured range (same fields, projected: true).
    rec("knl", "cpu", "horovod", 8, [15], projected=True), rec("knl", "cpu", "horovod", 16, [8], projected=True),
    rec("knl", "cpu", "horovod", 32, [4.5], projected=True),
]
skx = [
    rec("skx", "cpu", "mpi", 1, [60, 60], cpu_model="Intel Xeon Gold 6148", day="2026-11-03"),
    rec("skx", "cpu", "mpi", 1, [62], cpu_model="Intel Xeon Gold 6148", day="2026-11-04"),
    rec("skx", "cpu", "mpi", 2, [32, 31, 33], cpu_model="Intel Xeon Gold 6148", day="2026-11-04"),
    rec("skx", "cpu", "mpi", 4, [17], cpu_model="Intel Xeon Gold 6148", day="2026-11-04"),
    rec("skx", "cpu", "mpi", 4, [17], cpu_model="Intel Xeon Gold 6148", day="2026-11-04"),
    rec("skx", "cpu", "mpi", 8, [10], cpu_model="Intel Xeon Gold 6148", day="2026-11-05"),
    rec("skx", "cpu", "mpi", 8, [10.4], cpu_model="Intel Xeon Gold 6148", day="2026-11-05"),
]
gpu = [
    rec("titanrtx", "cuda", "none", 1, [20, 20], cpu_model="AMD EPYC 7302", day="2026-11-02"),
    rec("titanrtx", "cuda", "none", 1, [22], cpu_model="AMD EPYC 7302", day="2026-11-02"),
]
dump("knl.jsonl", knl)
dump("skx.jsonl", skx)
dump("gpu.jsonl", gpu)
q = lambda n, e, **k: rec("laptop", "cpu", "mpi", n, e, preset="quick", cpu_model="Intel Core i7", **k)
bad = [
    q(1, [3.0, 3.2]),                                  # line 1 ok
    '{"schema_version": 1, "run_id": "oops", ',       # line 2 not JSON
    json.dumps({k: v for k, v in q(2, [1.6]).items() if k not in ("system", "epoch_s")}),  # line 3 missing fields
    q(2, []),                                          # line 4 no measured epoch
    q(2, [1.7, 1.7]),                                  # line 5 ok
]
dump("malformed.jsonl", bad, tail=json.dumps(q(4, [1.0]))[:150])  # line 6 truncated, no newline

# A 2-core laptop that measured its CPU use (the record's `cpu`): 1 rank of 2 threads, then 2 ranks twice, once
# with 1 thread each (fits) and once with 2 each (4 threads on 2 cores: oversubscribed, and starved).
def cpu(threads, ranks, util_median, util_min, involuntary, why=None):
    return {"physical_cores": 2, "logical_cores": 2, "process_cores": 2, "memory_bytes": 24 * 2**30,
            "memory_available_bytes": 20 * 2**30, "load_average_start": 0.4, "cores_available": 2,
            "ranks_x_threads": ranks * threads, "util_median": util_median * threads,
            "util_per_thread_median": util_median, "util_per_thread_min": util_min, "util_per_thread_max": util_median,
            "voluntary_ctx_switches": 100, "involuntary_ctx_switches": involuntary,
            "oversubscribed": why is not None, "oversubscribed_why": why}

c = lambda n, e, threads, usage, **k: rec("laptop2", "cpu", "mpi", 1, e, world_size=n, rpn=n, cpu_model="Intel Core i5",
                                          day="2026-11-06", preset="custom", threads_per_rank=threads, cores_available=2, cpu=usage,
                                          **k)
dump("cpu.jsonl", [
    c(1, [30.0, 30.0], 2, cpu(2, 1, 0.95, 0.95, 500)),
    c(2, [20.0, 20.0], 1, cpu(1, 2, 0.92, 0.9, 800)),
    c(2, [26.0, 26.0], 2, cpu(2, 2, 0.5, 0.45, 9000, "2 rank(s) x 2 thread(s) = 4 on a node with 2 available "
                                                       "core(s); the least-used rank ran 0.45 cores per thread (under 0.8)")),
])
