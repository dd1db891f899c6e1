"""Spec: every mpirun the project starts or writes gets an Open MPI session directory of its own, removed
when the job ends, also when it fails or times out (bench/mpijob.py; docs/faults.md, 'Jobs started together
on one node'). Shown on the commands and scripts the project builds (unit tier), on the helpers' clean-up
(slow tier), and by jobs started together (mpi tier: 6 two-rank jobs at the same moment, 5 rounds)."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import mpijob
from launchers.make import main as make_scripts
from tests.mpi_env import MPI_ENV, ROOT

SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}
SOURCE_DIRS = ("bench", "benchmarks", "data", "launchers", "models", "reports", "scripts", "tests")


# --- the helper's environment and the shell lines --------------------------------------------------------
def test_session_env_sets_every_variable_and_keeps_the_rest():
    env = mpijob.session_env("/tmp/x", {"PATH": "/bin", "OMPI_MCA_orte_tmpdir_base": "/shared"})
    assert env == {"PATH": "/bin", "OMPI_MCA_orte_tmpdir_base": "/tmp/x", "PRTE_MCA_prte_tmpdir_base": "/tmp/x"}
    assert set(mpijob.SESSION_VARS) == {"OMPI_MCA_orte_tmpdir_base", "PRTE_MCA_prte_tmpdir_base"}


def test_shell_snippet_holds_the_module_lines():
    lines = (ROOT / "scripts" / "mpi_session.sh").read_text().splitlines()
    start = lines.index(mpijob.SHELL_LINES[0])
    assert tuple(lines[start:start + len(mpijob.SHELL_LINES)]) == mpijob.SHELL_LINES


def _commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _session_before_mpirun(text: str) -> list[str]:
    """The mpirun lines of a shell script that no session-directory set-up precedes."""
    ready, bad = False, []
    for line in _commands(text):
        if line in ("source scripts/mpi_session.sh", ". scripts/mpi_session.sh") or \
                line == mpijob.SHELL_LINES[-1]:  # the snippet's last line: the EXIT trap
            ready = True
        words = line.split()
        if "mpirun" in words[:2] and not ready:
            bad.append(line)
    return bad


def test_session_check_of_a_script_catches_a_bare_mpirun():
    assert _session_before_mpirun("set -e\nmpirun -np 2 python x.py\n") == ["mpirun -np 2 python x.py"]
    assert _session_before_mpirun("source scripts/mpi_session.sh\nmpirun -np 2 x\n") == []


def test_project_scripts_give_mpirun_a_session_dir():
    starting = []
    for path in sorted((ROOT / "scripts").glob("*.sh")):
        text = path.read_text()
        if any("mpirun" in line.split()[:2] for line in _commands(text)):
            starting.append(path.name)
            assert _session_before_mpirun(text) == [], f"{path}: mpirun without its own session directory"
    assert {"main_job.sh", "quality_run.sh"} <= set(starting)


GENERATED = [("local", ["--nodes", "1", "2"]),
             ("slurm", ["--nodes", "2", "--launch", "mpirun", "--mpi", "openmpi"]),
             ("slurm", ["--nodes", "2", "--launch", "mpirun", "--mpi", "openmpi", "--stop-before", "0"]),
             ("slurm", ["--nodes", "2", "--launch", "mpirun", "--mpi", "intel"]),
             ("pbs", ["--nodes", "2", "--mpi", "openmpi"]),
             ("pbs", ["--nodes", "2", "--mpi", "intel"]),
             ("pbs", ["--nodes", "2", "--mode", "sweep"])]


@pytest.mark.parametrize("scheduler,opts", GENERATED, ids=[" ".join([s, *o]) for s, o in GENERATED])
def test_generated_scripts_give_mpirun_a_session_dir(tmp_path, scheduler, opts):
    out = tmp_path / "jobs"
    assert make_scripts([scheduler, *opts, "--out-dir", str(out)]) == 0
    scripts = [p for p in sorted(out.iterdir()) if p.name != "submit_all.sh"]
    assert scripts
    for path in scripts:
        text = path.read_text()
        assert any("mpirun" in line.split()[:2] for line in _commands(text)), path.name
        assert _session_before_mpirun(text) == [], f"{path.name}: mpirun without its own session directory"
        assert "\n".join(mpijob.SHELL_LINES) in text


def test_srun_scripts_start_no_mpirun(tmp_path):
    """srun launches start the ranks without mpirun (Slurm's PMI), so there is no mpirun to set up."""
    out = tmp_path / "jobs"
    assert make_scripts(["slurm", "--nodes", "2", "--out-dir", str(out)]) == 0
    for path in out.glob("*.sbatch"):
        assert not any("mpirun" in line.split()[:2] for line in _commands(path.read_text()))


# --- every Python call site ------------------------------------------------------------------------------
def _is_mpirun_list(node) -> bool:
    return (isinstance(node, ast.List) and node.elts and isinstance(node.elts[0], ast.Constant)
            and node.elts[0].value == "mpirun")


def bare_mpirun_calls(source: str, name: str) -> list[str]:
    """``name:line`` of each subprocess call in ``source`` that starts an mpirun list directly (a list
    literal, or a name bound to one in the same function or module), not through bench.mpijob. A call whose
    line says ``noqa: shared-session`` is one that measures the shared directory on purpose."""
    tree, lines = ast.parse(source), source.splitlines()
    found = []
    scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module))]
    for scope in scopes:
        names = {t.id for n in ast.walk(scope) if isinstance(n, ast.Assign) and _is_mpirun_list(n.value)
                 for t in n.targets if isinstance(t, ast.Name)}
        for call in (n for n in ast.walk(scope) if isinstance(n, ast.Call) and n.args):
            f = call.func
            is_subprocess = (isinstance(f, ast.Attribute) and f.attr in SUBPROCESS_CALLS
                             and isinstance(f.value, ast.Name) and f.value.id == "subprocess")
            first = call.args[0]
            if "noqa: shared-session" in lines[call.lineno - 1]:
                continue
            if is_subprocess and (_is_mpirun_list(first) or (isinstance(first, ast.Name) and first.id in names)):
                found.append(f"{name}:{call.lineno}")
    return sorted(set(found))


def test_call_site_check_catches_a_bare_mpirun():
    source = ("import subprocess\n"
              "def f():\n"
              "    cmd = ['mpirun', '-np', '2', 'x']\n"
              "    subprocess.run(cmd)\n"
              "    subprocess.Popen(['mpirun', 'y'])\n"
              "    mpijob.run(cmd)\n"
              "    subprocess.run(['pgrep', 'x'])\n"
              "    subprocess.run(cmd)  # noqa: shared-session\n")
    assert bare_mpirun_calls(source, "made_up.py") == ["made_up.py:4", "made_up.py:5"]


def test_every_python_mpirun_goes_through_mpijob():
    bad = []
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            bad += bare_mpirun_calls(path.read_text(), str(path.relative_to(ROOT)))
    assert bad == [], f"mpirun started without its own session directory (use bench.mpijob): {bad}"


# --- the helpers clean up (slow: they start processes) ---------------------------------------------------
CHECK = 'test -d "$OMPI_MCA_orte_tmpdir_base" && [ "$OMPI_MCA_orte_tmpdir_base" = "$PRTE_MCA_prte_tmpdir_base" ]'


@pytest.mark.slow
@pytest.mark.parametrize("tail,code", [("", 0), ("; exit 3", 3)])
def test_run_passes_a_fresh_dir_and_removes_it(tail, code):
    proc = mpijob.run(["bash", "-c", f'{CHECK} || exit 9; echo "$OMPI_MCA_orte_tmpdir_base"{tail}'],
                      capture_output=True, text=True, timeout=30)
    assert proc.returncode == code, proc.stderr
    base = proc.stdout.strip()
    assert Path(base).name.startswith(mpijob.PREFIX) and not os.path.exists(base)


@pytest.mark.slow
def test_run_removes_the_dir_of_a_job_that_timed_out(tmp_path):
    note = tmp_path / "base"
    with pytest.raises(subprocess.TimeoutExpired):
        mpijob.run(["bash", "-c", f'echo "$OMPI_MCA_orte_tmpdir_base" > {note}; sleep 30'], timeout=2)
    assert not os.path.exists(note.read_text().strip())


@pytest.mark.slow
def test_job_removes_its_dir_once_it_has_ended():
    job = mpijob.Job(["bash", "-c", f"{CHECK} && sleep 0.5"])
    assert os.path.isdir(job.session_dir)
    assert job.wait(timeout=30) == 0
    assert not os.path.exists(job.session_dir)


# --- jobs started together -------------------------------------------------------------------------------
ROUNDS, JOBS = 5, 6


@pytest.mark.mpi
def test_jobs_started_together_each_finish_with_their_record(tmp_path):
    """6 two-rank jobs started at the same moment, 5 rounds: every job ends 0 with its record, each made
    its session directory under its own base (never another job's), and every base is gone afterwards."""
    probe = str(ROOT / "tests" / "mpi_scripts" / "session_probe.py")
    t0 = time.monotonic()
    for rnd in range(ROUNDS):
        outs = [tmp_path / f"r{rnd}-{j}.json" for j in range(JOBS)]
        jobs = [mpijob.Job(["mpirun", "-np", "2", sys.executable, probe, str(out)], env=MPI_ENV, cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for out in outs]
        ended = []
        for job in jobs:
            try:
                ended.append((job, job.communicate(timeout=60)[0]))
            except subprocess.TimeoutExpired:
                for j in jobs:
                    j.kill()
                pytest.fail(f"round {rnd}: a job did not end within 60 s: {job.args}")
        for job, log in ended:
            assert job.returncode == 0, f"round {rnd}, job {job.args}: status {job.returncode}\n{log[-3000:]}"
        records = [json.loads(out.read_text()) for out in outs]
        assert all(r["world_size"] == 2 and r["rank_sum"] == 1 and r["every_rank_in_base"] for r in records)
        assert [r["session_base"] for r in records] == [job.session_dir for job in jobs]
        assert len({r["session_base"] for r in records}) == JOBS
        assert not any(os.path.exists(job.session_dir) for job in jobs)
    assert time.monotonic() - t0 < 120, f"{ROUNDS} rounds took {time.monotonic() - t0:.0f} s"


def test_library_failure_picks_open_mpi_lines_only():
    log = ("loading\n--------\nA call to mkdir was unable to create the desired directory:\n"
           "  Directory: /tmp/ompi.vm.0\n  Error:     File exists\n"
           "[vm:1] ORTE_ERROR_LOG: Error in file ../../../orte/util/session_dir.c at line 107\n\nafter\nmore\n")
    lines = mpijob.library_failure(log)
    assert lines[0] == "loading" and "ORTE_ERROR_LOG" in lines[-1] and "after" not in lines
    assert mpijob.library_failure("error: --data x.h5: no such file\n") == []


@pytest.mark.slow  # the inner test starts processes
def test_the_suite_refuses_an_mpirun_without_its_own_session_dir(pytester):
    """tests/conftest.py: a test that starts mpirun bare fails before mpirun runs; through bench.mpijob it
    runs."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile("""
        import subprocess, pytest
        from bench import mpijob
        @pytest.mark.slow
        def test_bare():
            subprocess.run(["mpirun", "--version"], capture_output=True)
        @pytest.mark.slow
        def test_through_mpijob():
            assert mpijob.run(["mpirun", "--version"], capture_output=True).returncode == 0
    """)
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*SharedSessionDir*started mpirun without a fresh session directory*"])
