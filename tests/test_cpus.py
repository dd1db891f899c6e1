"""Spec: the default threads per rank come from the cores this process may use (CPU affinity, a cgroup CPU
quota), shared among the ranks on the node, never more than a rank's own CPUs; the record says so."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.runner import cpus
from bench.runner.comm import World
from bench.runner.environment import default_threads

ROOT = Path(__file__).resolve().parent.parent


def world(cpu_set, node_cores, local_size):
    return World(rank=0, size=local_size, local_rank=0, local_size=local_size, nodes=1,
                 ranks_per_node=local_size, hosts=("h",) * local_size, cpus=frozenset(cpu_set),
                 node_cores=node_cores)


def test_cgroup_quota_v2_and_v1(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpus.cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpus.cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_quota(tmp_path) == 2.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpus.cgroup_quota(tmp_path) is None
    assert cpus.cgroup_quota(tmp_path / "absent") is None


def test_node_cores_is_the_union_of_the_ranks_cpus_capped_by_the_quota():
    assert cpus.node_cores([frozenset({0, 1}), frozenset({0, 1})], None) == 2  # two ranks sharing two cores
    assert cpus.node_cores([frozenset({0}), frozenset({1})], None) == 2  # bound one core each
    assert cpus.node_cores([frozenset(range(64))], 4.0) == 4  # a container's 4-core quota on a 64-core host
    assert cpus.node_cores([frozenset(range(64))], 1.5) == 2


def test_default_threads():
    assert default_threads(3, world({0}, 1, 1)) == 3  # asked for
    assert default_threads(0, world({0, 1, 2, 3}, 4, 1)) == 4
    assert default_threads(0, world({0, 1, 2, 3}, 4, 2)) == 2  # two ranks share the node's four cores
    assert default_threads(0, world({0}, 2, 2)) == 1  # mpirun bound this rank to one core
    assert default_threads(0, world(range(64), 4, 1)) == 4  # the quota, not the host's 64 cores
    assert default_threads(0, world({0}, 1, 4)) == 1  # never 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2,
                    reason="needs taskset and two usable cores")
def test_a_run_restricted_to_one_core_uses_one_thread_and_records_it(tmp_path):
    out = tmp_path / "r.jsonl"
    proc = subprocess.run(["taskset", "-c", "0", sys.executable, "-m", "bench.strong_scaling", "--image-size", "16",
                           "--global-batch", "64", "--train-events", "128", "--val-events", "64", "--epochs", "2",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(out.read_text())
    assert rec["threads_per_rank"] == 1 and rec["cores_available"] == 1
