"""Spec: the job scripts `python -m launchers.make slurm` writes run under a real Slurm (22.05, the local
cluster of scripts/slurm_local.sh: two node daemons on this host, MpiDefault=none as many sites leave it).

* A 2-rank job ends COMPLETED with one record of world size 2: srun starts the ranks with the PMI the
  script names (PMIx), so they form one MPI world. The same script with a plain `srun` (no PMI) ends FAILED
  with every task's exit 2 and a message naming the fix, and no record: without the check each task would
  have run alone and written a one-rank record. A single process in a batch script (SLURM_NTASKS set, no
  job step) runs as one rank.
* The sweep (one allocation of two nodes, --sweep) and the one-job-per-node-count scripts (submit_all.sh)
  end COMPLETED with one record per rank count, the right node counts and their own job's identity.
* --launch mpirun starts the ranks with Open MPI's mpirun across the allocation's two nodes, and passes
  Slurm's warning signal from the batch shell to the ranks.
* A rank that raises or is killed ends the job, FAILED, within a minute, not at its time limit.
* A job that reaches its time limit gets SIGUSR1 before it (--signal), stops at an epoch boundary after the
  checkpoint and exits 75 (FAILED, not TIMEOUT), with no record; the same script submitted again with a
  longer limit finishes the run (--resume) with the losses and AUCs of an uninterrupted run.
* Every record carries the scheduler's identity (kind, job id, node list, cpus per task).

Jobs are tiny (16x16 images, 64-image batches) so the tier takes a few minutes on two cores. Where Slurm
cannot be installed and started (not root, not Debian) the tier skips with one line saying what is missing.
"""
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from launchers.make import main as make
from launchers.scripts import ENTRY
from tests.mpi_env import ROOT
from tests.slurm_cluster import bring_up, unavailable

SMALL = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "64", "--seed", "5"]
TINY = [*SMALL, "--epochs", "2"]


@pytest.fixture(scope="module")
def cluster():
    return bring_up()


def two_nodes(cluster):
    if len(cluster.nodes) < 2:
        pytest.skip("the local cluster has one node (MULTIJET_SLURM_NODES=1)")


def generate(out: Path, *opts: str, flags=TINY) -> list[Path]:
    """Scripts of `launchers.make slurm` for this cluster (2 cores a node, 1 thread a rank), records in
    out/records.jsonl."""
    code = make(["slurm", "--cores-per-node", "2", "--threads-per-rank", "1", *opts,
                 "--records", str(out / "records.jsonl"), "--out-dir", str(out), "--", *flags])
    assert code == 0
    return sorted(out.glob("*.sbatch"))


def log_of(script: Path, job_id: str) -> Path:
    """The job's output file, as the script's --output directive names it (a quoted value unquoted as sbatch
    does, ``%%`` one ``%``)."""
    (value,) = re.findall(r"^#SBATCH --output=(.+)$", script.read_text(), re.MULTILINE)
    (pattern,) = shlex.split(value)
    return Path(pattern.replace("%j", job_id).replace("%%", "%"))


def read(log: Path) -> str:
    """A job's output; a progress bar cut mid-character does not stop the test from reading it."""
    return log.read_text(errors="replace")


def records(out: Path) -> list[dict]:
    path = out / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_job(cluster, script: Path, timeout: float = 180, *sbatch_args) -> tuple[dict, str]:
    job_id = cluster.submit(script, *sbatch_args)
    fields = cluster.wait(job_id, timeout, log_of(script, job_id))
    log = read(log_of(script, job_id))
    return {**fields, "id": job_id}, log


def identity(job: dict, cpus: int = 1) -> dict:
    return {"kind": "slurm", "job_id": job["id"], "nodelist": job["NodeList"], "cpus_per_task": cpus}


def ranks_of(tag: str) -> dict[int, int]:
    """{rank: pid} of the srun-started ranks whose command line holds ``tag`` (their --system)."""
    found = {}
    for pid in subprocess.run(["pgrep", "-f", tag], capture_output=True, text=True, check=False).stdout.split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        rank = [v for v in environ if v.startswith(b"PMIX_RANK=")]  # ranks only, not srun
        if rank:
            found[int(rank[0].split(b"=")[1])] = int(pid)
    return found


def process_state(pid: int) -> tuple[str, bool, bool]:
    """(state letter, SIGUSR1 caught by a handler, SIGUSR1 pending) of process ``pid``, from
    /proc/PID/status; ("gone", False, False) when it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "gone", False, False
    usr1 = 1 << (signal.SIGUSR1 - 1)
    caught, pending = (int(re.search(rf"^{key}:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16) & usr1 > 0
                       for key in ("SigCgt", "ShdPnd"))
    return re.search(r"^State:\s*(\S)", status, re.MULTILINE).group(1), caught, pending


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def wait_for(path: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in read(path):
            return
        time.sleep(0.5)
    pytest.fail(f"{text!r} did not appear in {path} within {timeout:.0f} s")


def test_a_missing_sbatch_names_what_to_install():
    """Unit: the skip reason of a machine without Slurm that cannot install it."""
    reason = unavailable(which=lambda name: None, uid=1000)
    assert "sbatch not found" in reason and "apt-get install slurm-wlm munge" in reason
    assert "scripts/slurm_local.sh start" in reason
    assert unavailable(which=lambda name: f"/usr/bin/{name}" if name == "apt-get" else None, uid=0) is None


@pytest.mark.slurm
def test_two_rank_job_is_one_world(cluster, tmp_path):
    (script,) = generate(tmp_path, "--nodes", "1", "--ranks-per-node", "2",
                         flags=["--preset", "quick", *TINY])  # the quick preset, made tiny
    job, log = run_job(cluster, script)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log[-3000:]
    (rec,) = records(tmp_path)
    assert (rec["world_size"], rec["nodes"], rec["ranks_per_node"], rec["threads_per_rank"]) == (2, 1, 2, 1)
    assert rec["scheduler"] == identity(job) and rec["preset"] == "quick"


@pytest.mark.slurm
def test_paths_with_spaces_and_shell_metacharacters_survive_submission(cluster, tmp_path):
    """The output directory and the records path hold spaces, quotes, a percent sign, a '#' and shell
    syntax: the job runs, its log lands where the directive names it, the record where --records says, and
    nothing in the paths is run by the shell."""
    out = tmp_path / """my jobs; $(touch pwned) `touch pwned` & 'q' "d" 100% #1"""
    out.mkdir()
    (script,) = generate(out, "--nodes", "1", "--ranks-per-node", "2")
    job, log = run_job(cluster, script)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log[-3000:]
    assert log_of(script, job["id"]).parent == out
    (rec,) = records(out)
    assert rec["world_size"] == 2 and rec["config"]["out"].endswith(f"{out.name}/records.jsonl")
    assert not list(ROOT.glob("pwned")) and not list(tmp_path.rglob("pwned"))


@pytest.mark.slurm
def test_srun_without_a_pmi_is_refused(cluster, tmp_path):
    """The first try's finding: `srun python ...` under MpiDefault=none started two one-rank runs."""
    (script,) = generate(tmp_path, "--nodes", "1", "--ranks-per-node", "2")
    plain = script.with_name("plain.sbatch")
    plain.write_text(script.read_text().replace("srun --mpi=pmix ", "srun "))
    job, log = run_job(cluster, plain, timeout=120)
    assert job["JobState"] == "FAILED", log[-3000:]
    assert log.count("error: the launcher started 2 tasks (SLURM_STEP_NUM_TASKS=2)") >= 1
    assert "srun --mpi=pmix" in log and "Exited with exit code 2" in log
    assert records(tmp_path) == []


@pytest.mark.slurm
def test_a_single_process_in_an_allocation_runs(cluster, tmp_path):
    """A batch script has SLURM_NTASKS (the allocation's 2) but is one process, not a step: it runs."""
    script = tmp_path / "single.sbatch"
    out = tmp_path / "records.jsonl"
    script.write_text("\n".join([
        "#!/bin/bash", "#SBATCH --ntasks=2", "#SBATCH --cpus-per-task=1", "#SBATCH --time=00:05:00",
        f"#SBATCH --output={tmp_path}/single-%j.out", "set -euo pipefail",
        f'"$MULTIJET_PYTHON" {ENTRY} {" ".join(TINY)} --threads 1 --backend none --out {out}', ""]))
    job, log = run_job(cluster, script, timeout=120)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log[-3000:]
    (rec,) = records(tmp_path)
    assert rec["world_size"] == 1 and rec["scheduler"] == identity(job)


@pytest.mark.slurm
def test_sweep_in_one_allocation_of_two_nodes(cluster, tmp_path):
    two_nodes(cluster)
    (script,) = generate(tmp_path, "--nodes", "1", "2", "--mode", "sweep", flags=[*TINY, "--backend", "mpi"])
    assert script.name == "multijet-sweep0002.sbatch"
    job, log = run_job(cluster, script)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log[-3000:]
    recs = records(tmp_path)
    assert [(r["world_size"], r["nodes"]) for r in recs] == [(1, 1), (2, 2)]
    assert len({r["sweep_id"] for r in recs}) == 1 and all(r["scheduler"] == identity(job) for r in recs)
    assert job["NodeList"] == ",".join(cluster.nodes)


@pytest.mark.slurm
def test_one_job_per_node_count(cluster, tmp_path):
    two_nodes(cluster)
    scripts = generate(tmp_path, "--nodes", "1", "2", flags=[*TINY, "--backend", "mpi"])
    assert [s.name for s in scripts] == ["multijet-n0001.sbatch", "multijet-n0002.sbatch"]
    proc = subprocess.run(["bash", str(tmp_path / "submit_all.sh")], cwd=ROOT, env=cluster.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    ids = re.findall(r"Submitted batch job (\d+)", proc.stdout)
    assert len(ids) == 2
    jobs = []
    for job_id, script in zip(ids, scripts):
        fields = cluster.wait(job_id, 180, log_of(script, job_id))
        assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), read(log_of(script, job_id))
        jobs.append({**fields, "id": job_id})
    by_job = {r["scheduler"]["job_id"]: r for r in records(tmp_path)}
    assert sorted(by_job) == sorted(ids)
    for nodes, job in zip((1, 2), jobs):
        rec = by_job[job["id"]]
        assert (rec["world_size"], rec["nodes"], rec["scheduler"]) == (nodes, nodes, identity(job))


@pytest.mark.slurm
def test_mpirun_launch_spans_the_allocation_and_passes_on_the_warning(cluster, tmp_path):
    """--launch mpirun: Open MPI's mpirun starts one rank on each node; Slurm's B: warning reaches the batch
    shell (sent here as Slurm sends it), which passes it to mpirun and so to the ranks."""
    two_nodes(cluster)
    flags = [*SMALL, "--epochs", "400", "--backend", "mpi", "--checkpoint",
             str(tmp_path / "ck"), "--resume"]
    (script,) = generate(tmp_path, "--nodes", "2", "--launch", "mpirun", "--mpi", "openmpi", flags=flags)
    job_id = cluster.submit(script)
    wait_for(log_of(script, job_id), "epoch 1 (measured)")
    cluster.signal_batch_shell(job_id, "USR1")
    signalled = time.monotonic()
    job = cluster.wait(job_id, 60, log_of(script, job_id))
    log = read(log_of(script, job_id))
    assert time.monotonic() - signalled < 30, "the ranks did not stop at the next epoch boundary"
    assert (job["JobState"], job["ExitCode"]) == ("FAILED", "75:0"), log[-3000:]
    assert "stopped: SIGUSR1" in log and "of the 2-rank run" in log
    assert (tmp_path / "ck.n2").exists() and records(tmp_path) == []


@pytest.mark.slurm
@pytest.mark.parametrize("fault", ["raise", "kill"])
def test_a_failing_rank_ends_the_job_within_a_minute(cluster, tmp_path, fault):
    tag = f"slurm-fault-{tmp_path.name}"
    flags = [*SMALL, "--epochs", "400", "--backend", "mpi", "--system", tag]
    (script,) = generate(tmp_path, "--nodes", "1", "--ranks-per-node", "2", "--walltime", "00:10:00", flags=flags)
    if fault == "raise":  # rank 1 raises at the start of epoch 1 (tests/mpi_scripts/fault_run.py)
        script.write_text(script.read_text().replace(ENTRY, "tests/mpi_scripts/fault_run.py 1 raise@1"))
    job_id = cluster.submit(script)
    log = log_of(script, job_id)
    wait_for(log, "injected raise@1" if fault == "raise" else "epoch 1 (measured)")
    if fault == "kill":  # as the OOM killer would
        os.kill(ranks_of(tag)[1], signal.SIGKILL)
    failed = time.monotonic()
    job = cluster.wait(job_id, 120, log)
    assert time.monotonic() - failed < 60, "the job outlived its failed rank by a minute"
    assert job["JobState"] == "FAILED", read(log)[-3000:]
    if fault == "raise":
        assert "injected on rank 1" in read(log)
    assert records(tmp_path) == []


@pytest.mark.slurm
def test_the_time_limit_stops_cleanly_and_resubmission_finishes_the_run(cluster, tmp_path):
    """A 1-minute limit (Slurm's shortest) with the warning 50 s before it. Slurm looks at time limits about
    every 30 s, so SIGUSR1 comes 10 to 40 s after the start, and 30 tiny epochs may be over by then: the
    test holds the ranks (SIGSTOP) as soon as they catch SIGUSR1, long before it can come, until Slurm's
    signal is pending in them (Slurm continues the tasks it signals), then lets them go on; they stop after
    their first epoch. An uninterrupted run of the same configuration runs meanwhile on the other node."""
    tag = f"slurm-limit-{tmp_path.name}"
    flags = ["--model", "compact", "--image-size", "16", "--global-batch", "64", "--train-events", "128",
             "--val-events", "32", "--seed", "5", "--epochs", "30", "--backend", "mpi"]
    ckpt = ["--checkpoint", str(tmp_path / "ck"), "--resume", "--system", tag]
    (script,) = generate(tmp_path, "--nodes", "1", "--ranks-per-node", "2", "--walltime", "00:01:00",
                         "--stop-before", "50", flags=[*flags, *ckpt])
    assert "#SBATCH --signal=USR1@50" in script.read_text().splitlines()
    (reference,) = generate(tmp_path / "ref", "--nodes", "1", "--ranks-per-node", "2", "--walltime", "00:10:00",
                            "--stop-before", "0", flags=flags)
    first = cluster.submit(script)
    ref = cluster.submit(reference)
    ranks = {}

    def catching():  # both ranks started and their SIGUSR1 handler installed (bench/strong_scaling.py)
        ranks.update(ranks_of(tag))
        return sorted(ranks) == [0, 1] and all(process_state(pid)[1] for pid in ranks.values())

    wait_until(catching, 60, "the ranks did not start")
    for pid in ranks.values():
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: all(process_state(pid)[0] == "T" for pid in ranks.values()), 10, "the ranks did not stop")
        # until the signal is pending in each, or Slurm has continued it
        wait_until(lambda: not any(process_state(pid)[0] == "T" and not process_state(pid)[2]
                                   for pid in ranks.values()), 60, "Slurm's warning did not come within a minute")
    finally:
        for pid in ranks.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    job = cluster.wait(first, 90, log_of(script, first))
    log = read(log_of(script, first))
    assert (job["JobState"], job["ExitCode"]) == ("FAILED", "75:0"), log[-3000:]  # not TIMEOUT
    assert "stopped the job after 1 of 30 epoch(s) of the 2-rank run" in log
    assert (tmp_path / "ck.n2").exists() and records(tmp_path) == []
    # the same script again, with room to finish
    job, log = run_job(cluster, script, 300, "--time=00:10:00")
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), log[-3000:]
    assert f"resuming from {tmp_path / 'ck.n2'} after epoch 0" in log
    ref_job = cluster.wait(ref, 300, log_of(reference, ref))
    assert ref_job["JobState"] == "COMPLETED", read(log_of(reference, ref))[-3000:]
    (resumed,), (uninterrupted,) = records(tmp_path), records(tmp_path / "ref")
    assert resumed["val_loss"] == uninterrupted["val_loss"] and resumed["auc"] == uninterrupted["auc"]
    assert len(resumed["epoch_s"]) == len(uninterrupted["epoch_s"]) == 29
    assert resumed["scheduler"] == identity(job)
