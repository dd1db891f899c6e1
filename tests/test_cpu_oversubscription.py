"""Spec (under mpirun -np 2): a run whose ranks ask for more threads than their node has cores is flagged
oversubscribed in its record (``cpu``, docs/records.md) with the reason, warned about once on stderr by rank 0,
and shown in the report (summary, scaling table, CPU-use table and figure); two ranks of one thread each on
a node of at least 2 cores are not flagged for their cores. Whether a rank's utilisation falls under the floor
depends on what else runs on the machine, so that half of the verdict is checked only for its wording here
(tests/test_reduce.py works it by hand).
"""
import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import mpijob
from bench.runner import cpus
from tests.mpi_env import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.mpi
TINY = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "64", "--epochs", "3",
        "--backend", "mpi"]
CROWDED = "rank(s) x"


def node_cores() -> int:
    """The cores the harness counts for this node (affinity, cgroup quota), as World.node_cores does."""
    return cpus.node_cores([cpus.affinity()], cpus.cgroup_quota())


def run_two_ranks(tmp_path, threads: int):
    if shutil.which("mpirun") is None:
        pytest.fail("mpirun not found: the distributed tier needs Open MPI (scripts/setup.sh installs it)")
    out = tmp_path / "r.jsonl"
    cmd = ["mpirun", "-np", "2", sys.executable, "-m", "bench.strong_scaling", *TINY, "--threads", str(threads),
           "--out", str(out)]
    proc = mpijob.run(cmd, cwd=ROOT, env=MPI_ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    return proc, record, out


def test_two_ranks_with_every_core_each_are_flagged_in_the_record_on_stderr_and_in_the_report(tmp_path):
    n = node_cores()
    proc, record, out = run_two_ranks(tmp_path, threads=n)
    cpu = record["cpu"]
    assert cpu["oversubscribed"] is True
    assert (cpu["ranks_x_threads"], cpu["cores_available"]) == (2 * n, n)
    assert cpu["oversubscribed_why"].startswith(f"2 rank(s) x {n} thread(s) = {2 * n} on a node with {n} available")
    assert cpu["logical_cores"] >= cpu["process_cores"] >= 1 and cpu["memory_bytes"] > 0
    assert 0 < cpu["util_per_thread_min"] <= cpu["util_per_thread_median"] <= cpu["util_per_thread_max"]
    assert cpu["involuntary_ctx_switches"] >= 0 and cpu["voluntary_ctx_switches"] >= 0
    warnings = [line for line in proc.stderr.splitlines() if "was oversubscribed" in line]
    assert len(warnings) == 1 and f"the 2-rank run {record['run_id']}" in warnings[0]  # once, by rank 0

    from reports import build

    report = tmp_path / "report"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert build.main([str(out), "--out", str(report)]) == 0
    assert "CPU oversubscribed in 1 of 1 run(s): 2 rank(s) x" in err.getvalue()
    md = (report / "report.md").read_text()
    summary = md.split("## Figures")[0]
    assert "WARNING: CPU oversubscribed in 1 of 1 run(s)" in summary
    assert "![cpu_use](cpu_use.png)" in md and (report / "cpu_use.svg").exists()
    assert "oversubscribed in 1 of 1 run(s)" in (report / "scaling.md").read_text()  # beside the point
    assert "2 rank(s) x" in (report / "cpu_use.csv").read_text()


def test_two_ranks_of_one_thread_fit_the_cores(tmp_path):
    if node_cores() < 2:
        pytest.skip(f"this node lets a process use {node_cores()} core: 2 ranks of 1 thread do not fit")
    proc, record, _ = run_two_ranks(tmp_path, threads=1)
    cpu = record["cpu"]
    assert cpu["ranks_x_threads"] == 2 and cpu["cores_available"] >= 2
    why = cpu["oversubscribed_why"] or ""
    assert CROWDED not in why
    # Only the utilisation can flag it: other processes took the cores (the load average says how busy it was).
    assert cpu["oversubscribed"] is False or why.startswith("the least-used rank ran"), why
    assert ("was oversubscribed" in proc.stderr) == cpu["oversubscribed"]
