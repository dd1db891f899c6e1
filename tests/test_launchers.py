"""Spec: `python -m launchers.make` writes Slurm, PBS Pro and local scripts whose resource lines match the
request (nodes, ranks per node, threads, walltime, queue, account) and whose launch line runs
bench.strong_scaling with --threads and --out set by the launcher plus the user's flags; every flag on
every launch line parses with the benchmark's real parser, so scripts and parser cannot drift; a bad
pass-through flag exits 2 naming the flag and writes nothing."""
import re
from pathlib import Path

import pytest

from bench.runner.config import build_parser, parse_config
from launchers.make import main
from launchers.scripts import launch_flags, launch_line

USER = ["--preset", "paper", "--backend", "horovod", "--model", "circpad", "--image-size", "224"]


def generate(tmp_path, scheduler, *opts, flags=USER):
    out = tmp_path / scheduler
    assert main([scheduler, *opts, "--out-dir", str(out), "--", *flags]) == 0
    return out


def scripts(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.iterdir()) if p.name != "submit_all.sh"}


def check_flags(text: str, threads: int, records: str, sweep: bool) -> None:
    flags = launch_flags(text)
    args = vars(build_parser().parse_args(flags))  # the real parser: an unknown flag raises SystemExit
    assert args["threads"] == threads and args["out"] == records
    assert args.get("sweep", False) == sweep
    assert flags[-len(USER):] == USER  # the user's flags passed through unchanged, in order
    parse_config(flags)  # and they validate


@pytest.mark.parametrize("nodes", [1, 2, 1024])
def test_slurm_jobs(tmp_path, nodes):
    out = generate(tmp_path, "slurm", "--nodes", "1", "2", "1024", "--ranks-per-node", "2",
                   "--queue", "knl", "--account", "proj1", "--walltime", "02:30:00")
    text = scripts(out)[f"multijet-n{nodes:04d}.sbatch"]
    for line in (f"#SBATCH --nodes={nodes}", "#SBATCH --ntasks-per-node=2", "#SBATCH --cpus-per-task=34",
                 "#SBATCH --time=02:30:00", "#SBATCH --partition=knl", "#SBATCH --account=proj1",
                 f"#SBATCH --job-name=multijet-n{nodes:04d}", "export OMP_NUM_THREADS=34",
                 "#SBATCH --signal=USR1@300"):  # the warning goes to every task of the step
        assert line in text.splitlines()
    assert re.search(r"^#SBATCH --output=\S+multijet-n%04d-%%j\.out$" % nodes, text, re.M)
    # PMIx by default: without a PMI each task would be alone in a world of one
    assert launch_line(text).startswith('srun --mpi=pmix --kill-on-bad-exit=1 --cpu-bind=cores "$PY" ')
    check_flags(text, 34, "results/records.jsonl", sweep=False)
    submit = (out / "submit_all.sh").read_text()
    assert submit.count("sbatch ") == 3


@pytest.mark.parametrize("nodes", [1, 2, 1024])
def test_pbs_jobs_nurion_style(tmp_path, nodes):
    out = generate(tmp_path, "pbs", "--nodes", "1", "2", "1024", "--queue", "normal", "--account", "kisti",
                   "--records", "results/knl.jsonl")
    text = scripts(out)[f"multijet-n{nodes:04d}.pbs"]
    for line in (f"#PBS -l select={nodes}:ncpus=68:mpiprocs=1:ompthreads=68", "#PBS -l walltime=01:00:00",
                 "#PBS -q normal", "#PBS -A kisti", f"#PBS -N multijet-n{nodes:04d}",
                 'cd "$PBS_O_WORKDIR"', "export OMP_NUM_THREADS=68"):
        assert line in text.splitlines()
    assert "KMP_AFFINITY" in text and "numactl" in text  # KNL notes as comments
    assert launch_line(text).startswith(f"mpirun -np {nodes} -ppn 1 ")
    check_flags(text, 68, "results/knl.jsonl", sweep=False)


def test_pbs_openmpi_several_ranks_per_node_and_mcdram(tmp_path):
    out = generate(tmp_path, "pbs", "--nodes", "4", "--ranks-per-node", "4", "--mpi", "openmpi", "--mcdram-flat")
    text = scripts(out)["multijet-n0004.pbs"]
    assert "#PBS -l select=4:ncpus=68:mpiprocs=4:ompthreads=17" in text
    line = launch_line(text)
    assert line.startswith("mpirun -np 16 --map-by ppr:4:node:pe=17 --bind-to core numactl --preferred=1 ")
    check_flags(text, 17, "results/records.jsonl", sweep=False)


@pytest.mark.parametrize("scheduler,name", [("slurm", "multijet-sweep1024.sbatch"),
                                            ("pbs", "multijet-sweep1024.pbs")])
def test_sweep_mode_is_one_allocation_of_the_largest_count(tmp_path, scheduler, name):
    out = generate(tmp_path, scheduler, "--nodes", "1", "2", "1024", "--mode", "sweep")
    found = scripts(out)
    assert list(found) == [name] and not (out / "submit_all.sh").exists()
    text = found[name]
    assert "--nodes=1024" in text or "select=1024:" in text
    check_flags(text, 68, "results/records.jsonl", sweep=True)


def test_slurm_launch_choices(tmp_path):
    """--launch: srun with the PMI named, or the MPI's own mpirun inside the allocation, which gets Slurm's
    warning in the batch shell (B:) and passes it on; the launch line parses either way."""
    out = generate(tmp_path, "slurm", "--nodes", "2", "--launch", "srun-pmi2", "--walltime", "00:20:00")
    text = scripts(out)["multijet-n0002.sbatch"]
    assert launch_line(text).startswith("srun --mpi=pmi2 --kill-on-bad-exit=1 ")
    assert "#SBATCH --signal=USR1@120" in text.splitlines()  # a tenth of a walltime under 50 minutes
    out = generate(tmp_path / "m", "slurm", "--nodes", "2", "--ranks-per-node", "2", "--launch", "mpirun",
                   "--mpi", "openmpi", "--stop-before", "90")
    text = scripts(out)["multijet-n0002.sbatch"]
    lines = text.splitlines()
    assert "#SBATCH --signal=B:USR1@90" in lines
    assert launch_line(text).startswith("mpirun -np 4 --map-by ppr:2:node:pe=34 --bind-to core ")
    assert launch_line(text).endswith(" &")
    assert lines.index("trap 'kill -USR1 \"$launcher\" 2>/dev/null' USR1") < lines.index(launch_line(text))
    check_flags(text, 34, "results/records.jsonl", sweep=False)
    out = generate(tmp_path / "n", "slurm", "--nodes", "1", "--launch", "mpirun", "--stop-before", "0")
    text = scripts(out)["multijet-n0001.sbatch"]
    # no warning to pass on (the one trap is the session directory's clean-up on EXIT, bench.mpijob)
    traps = [line for line in text.splitlines() if line.startswith("trap ")]
    assert "--signal" not in text and traps == ["trap 'rm -rf \"$mpi_session\"' EXIT"]
    assert not launch_line(text).endswith("&")


def test_local_sweep(tmp_path):
    out = generate(tmp_path, "local", "--nodes", "2", "--threads-per-rank", "1")
    text = scripts(out)["multijet-sweep0002.sh"]
    assert re.search(r'mpirun "\$\{mpi_flags\[@\]\}" -np 2 ', launch_line(text))
    check_flags(text, 1, "results/records.jsonl", sweep=True)


def test_flags_with_spaces_are_quoted(tmp_path):
    flags = ["--system", "Nurion KNL", "--data", "/scratch/my events.h5"]
    out = generate(tmp_path, "slurm", "--nodes", "1", flags=flags)
    text = scripts(out)["multijet-n0001.sbatch"]
    args = vars(build_parser().parse_args(launch_flags(text)))
    assert args["system"] == "Nurion KNL" and args["data"] == "/scratch/my events.h5"


@pytest.mark.parametrize("flags,named", [
    (["--bogus", "1"], "--bogus"),
    (["--image-size", "abc"], "--image-size"),
    (["--image-size", "60"], "--image-size"),
    (["--backend", "nccl"], "--backend"),
    (["--out", "x.jsonl"], "--records"),
    (["--threads", "4"], "--threads-per-rank"),
    (["--sweep"], "--mode sweep"),
    (["--global-batch", "1000"], "--global-batch"),  # not divisible by 1024 ranks
])
def test_bad_pass_through_flag_is_refused(tmp_path, capsys, flags, named):
    out = tmp_path / "gen"
    assert main(["slurm", "--nodes", "1", "1024", "--out-dir", str(out), "--", *flags]) == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("scheduler,opts,named", [
    ("pbs", ["--walltime", "2h"], "--walltime"),
    ("pbs", ["--ranks-per-node", "4", "--threads-per-rank", "20"], "--cores-per-node"),
    ("pbs", ["--launch", "mpirun"], "--launch"),
    ("pbs", ["--stop-before", "60"], "--stop-before"),
    ("local", ["--launch", "srun-pmix"], "--launch"),
    ("slurm", ["--walltime", "00:05:00", "--stop-before", "300"], "--stop-before"),
    ("slurm", ["--stop-before", "-1"], "--stop-before"),
])
def test_bad_launcher_option_is_refused(tmp_path, capsys, scheduler, opts, named):
    assert main([scheduler, "--nodes", "2", *opts, "--out-dir", str(tmp_path / "g")]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


@pytest.mark.mpi
def test_generated_local_script_runs_a_sweep(tmp_path):
    """The distributed tier: the local script really runs, and writes one record per world size."""
    import json
    import shutil
    import subprocess
    if shutil.which("mpirun") is None:
        pytest.fail("mpirun not found: the distributed tier needs Open MPI (scripts/setup.sh installs it)")
    records = tmp_path / "rec.jsonl"
    out = generate(tmp_path, "local", "--nodes", "2", "--threads-per-rank", "1", "--records", str(records),
                   flags=["--image-size", "16", "--global-batch", "64", "--train-events", "192",
                          "--val-events", "64", "--epochs", "2", "--backend", "mpi"])
    script = out / "multijet-sweep0002.sh"
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    recs = [json.loads(line) for line in records.read_text().splitlines()]
    assert [r["world_size"] for r in recs] == [1, 2] and all(r["threads_per_rank"] == 1 for r in recs)


def test_a_torchvision_model_gets_the_vision_environment(tmp_path):
    """A scheduler script for a torchvision model runs the vision environment's interpreter (README, 'Standard
    image models'); the study's CNN keeps the project's."""
    vision = scripts(generate(tmp_path / "v", "slurm", "--nodes", "1",
                              flags=["--model", "resnet50", "--image-size", "224"]))["multijet-n0001.sbatch"]
    plain = scripts(generate(tmp_path / "p", "slurm", "--nodes", "1"))["multijet-n0001.sbatch"]
    assert "PY=${MULTIJET_PYTHON:-.venv-vision/bin/python}" in vision.splitlines()
    assert "PY=${MULTIJET_PYTHON:-.venv/bin/python}" in plain.splitlines()
