"""Spec (docs/faults.md, 'Writes, inputs and duplicates'): on a file system that fills up (a small tmpfs,
filled to its last byte before the command writes), every entry point exits 2 with one line naming the
path and "No space left on device", and the files that were there keep their bytes. A run keeps its result:
the record the full records file cannot take is written whole to a fallback file the message names, and
``python -m bench.records add`` puts it into the records once there is room; under mpirun -np 2 the job
ends as promptly.

Needs root and mount(8) for the tmpfs (as .ci/run has); elsewhere each test skips, saying so.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import mpijob
from bench.records import append_record, new_record, read_records
from tests.mpi_env import MPI_ENV, ROOT

TINY = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "64", "--epochs", "1",
        "--threads", "1"]
FULL = "cannot be written (No space left on device)"


@pytest.fixture
def disk(tmp_path):
    """A 2 MiB tmpfs at tmp_path/disk, unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs root and mount(8)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path) -> None:
    """Fill ``mnt`` to its last byte."""
    with open(mnt / "filler", "wb", buffering=0) as fh:
        for size in (1 << 16, 1 << 10, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError:
                continue


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
            and p.name != "filler"}


def python(*args, cwd, env=None, timeout=180):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env or {**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=timeout)


def earlier_records(path: Path, n: int = 2) -> bytes:
    for i in range(n):
        append_record(str(path), new_record(system="earlier", preset="custom", backend="none", world_size=1,
                                            device="cpu", model="circpad", image_size=16, global_batch=64,
                                            epoch_s=[1.0 + i], label=f"earlier {i}"))
    return path.read_bytes()


def kept_file(stderr: str) -> Path:
    (found,) = re.findall(r"record is kept in (\S+) and printed above", stderr)
    return Path(found)


@pytest.mark.slow
def test_a_run_whose_records_file_fills_up_exits_2_and_its_record_is_recovered(disk, tmp_path):
    out = disk / "records.jsonl"
    before = earlier_records(out)
    fill(disk)
    proc = python("-m", "bench.strong_scaling", *TINY, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --out {out}: {FULL}; the run's record is kept in ")
    assert out.read_bytes() == before
    kept = kept_file(proc.stderr)
    assert kept.parent == tmp_path  # beside the records was full: the working directory took it
    (lost,) = read_records(str(kept))[0]
    # once there is room, the documented command adds it, once however often it is given
    (disk / "filler").unlink()
    for _ in range(2):
        add = python("-m", "bench.records", "add", str(kept), "--to", str(out), cwd=tmp_path)
        assert add.returncode == 0, add.stderr
    got, problems = read_records(str(out))
    assert problems == [] and out.read_bytes().startswith(before)
    assert [r["run_id"] for r in got][-1] == lost["run_id"] and len(got) == 3


@pytest.mark.mpi
def test_under_mpirun_rank_0s_failed_append_ends_the_job_with_its_message(disk, tmp_path):
    out = disk / "records.jsonl"
    before = earlier_records(out)
    fill(disk)
    t0 = time.monotonic()
    proc = mpijob.run(["mpirun", "-np", "2", sys.executable, "-m", "bench.strong_scaling", *TINY, "--out", str(out)],
                      cwd=tmp_path, env=MPI_ENV, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    assert f"error: rank 0: --out {out}: {FULL}" in proc.stderr
    assert out.read_bytes() == before and kept_file(proc.stderr).is_file()
    assert time.monotonic() - t0 < 120


@pytest.mark.slow
@pytest.mark.parametrize("flag,file,recorded", [("--save-model", "model.pt", True), ("--mllog", "mllog.txt", False),
                                                ("--checkpoint", "run.ckpt", False)])
def test_a_runs_other_outputs_on_a_full_disk_exit_2_naming_the_flag(disk, tmp_path, flag, file, recorded):
    """The model file fails after the run is measured: its record is kept. The MPLerf log and the
    checkpoint fail during the run: nothing is recorded, and the message says so."""
    out = tmp_path / "records.jsonl"
    fill(disk)
    proc = python("-m", "bench.strong_scaling", *TINY, "--out", str(out), flag, str(disk / file), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    shown = f"{disk / file}.n1" if flag == "--checkpoint" else str(disk / file)
    assert f"error: {flag} {shown}: {FULL}" in proc.stderr
    assert len(read_records(str(out))[0]) == 1 if recorded else not out.exists()
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no temporary file, no torn file


@pytest.mark.slow
def test_a_report_on_a_full_disk_exits_2_and_keeps_the_earlier_report(disk, tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_bytes((ROOT / "tests/records/cpu.jsonl").read_bytes())
    report = disk / "report"
    first = python("-m", "reports.build", str(records), "--out", str(report), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(report)
    fill(disk)
    again = python("-m", "reports.build", str(records), str(records), "--out", str(report), cwd=tmp_path)
    assert again.returncode == 2, again.stderr[-3000:]
    assert re.search(rf"^error: {re.escape(str(report))}/\S+: {re.escape(FULL)}$", again.stderr, re.M)
    assert snapshot(report) == before


@pytest.mark.slow
def test_job_scripts_on_a_full_disk_exit_2_and_leave_no_partial_script(disk, tmp_path):
    fill(disk)
    proc = python("-m", "launchers.make", "slurm", "--nodes", "1", "2", "--out-dir", str(disk / "jobs"), cwd=tmp_path)
    assert proc.returncode == 2 and FULL in proc.stderr, proc.stderr
    assert list((disk / "jobs").iterdir()) == []


@pytest.mark.slow
def test_a_store_that_fills_the_disk_keeps_its_committed_events(disk):
    from data.files import WriteError
    from data.store import StoreWriter, write_synthetic

    path = disk / "events.h5"
    with pytest.raises(WriteError, match=re.escape(f"{path}: cannot be written (No space left on device")):
        write_synthetic(path, 100_000, 16, pixels_per_event=20, chunk_events=256)
    with StoreWriter(path, 16) as store:
        committed = store.committed
    assert committed > 0 and committed % 256 == 0
    from data import open_source

    source = open_source(str(path), 16, "max", 0)
    assert len(source) == committed


@pytest.mark.slow
def test_the_projection_json_on_a_full_disk_exits_2_and_keeps_the_old_file(disk, tmp_path):
    target = disk / "projection.json"
    target.write_text("{}\n")
    fill(disk)
    proc = python("-m", "bench.projection", "--published", "--json", str(target), "--plot", "", cwd=tmp_path)
    assert proc.returncode == 2 and f"error: {target}: {FULL}" in proc.stderr, proc.stderr[-2000:]
    assert target.read_text() == "{}\n"


@pytest.mark.slow
def test_the_physics_tables_on_a_full_disk_exit_2_and_keep_the_earlier_ones(disk, tmp_path):
    trained = python("-m", "bench.strong_scaling", *TINY, "--out", str(tmp_path / "r.jsonl"), "--save-model",
                     str(tmp_path / "m.pt"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = disk / "physics"
    for module in ("bench.evaluate", "reports.physics"):
        first = python("-m", module, "--model-weights", str(tmp_path / "m.pt"), "--bootstrap", "0", "--out", str(out),
                       cwd=tmp_path)
        assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(out)
    fill(disk)
    for module in ("bench.evaluate", "reports.physics"):
        proc = python("-m", module, "--model-weights", str(tmp_path / "m.pt"), "--bootstrap", "0", "--out", str(out),
                      cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert re.search(rf"^error: {re.escape(str(out))}/\S+: {re.escape(FULL)}$", proc.stderr, re.M), proc.stderr
        assert snapshot(out) == before
