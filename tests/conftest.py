"""Test tiers: ``unit``, ``slow``, ``mpi`` and ``slurm``; every test is in exactly one.

* ``slurm``: submits jobs to a Slurm cluster with ``sbatch`` (tests/test_slurm.py; the local cluster of
  ``scripts/slurm_local.sh``). Marked by hand.
* ``mpi``: runs jobs under ``mpirun -np 2`` (marked by hand, ``pytestmark = pytest.mark.mpi`` or
  ``@pytest.mark.mpi``).
* ``slow``: starts processes (the entry points ``python -m bench.strong_scaling``, ``bench.evaluate``,
  ``reports.build``, ``reports.physics``, ``data.generation.*``, launcher scripts, multiprocessing workers) or
  takes seconds by itself (marked by hand).
* ``unit``: everything else, marked here automatically. The tier promises to start no process, and the
  promise is kept: in a unit test (its fixtures included, whatever their scope) starting one through
  ``subprocess``, ``multiprocessing``, ``os.fork``, ``os.system`` or ``os.posix_spawn`` raises
  ``ProcessInUnitTest`` and fails the test, even if the code under test swallows the error.

``pytest -m unit`` is the quick tier (well under a minute on two cores); ``-m slow``, ``-m mpi`` and ``-m
slurm`` the others; no marker option runs all four.

Across the tiers, ``vision`` marks the tests of torchvision's models (tests/test_vision_models.py). They run
in the vision environment (``MULTIJET_VISION=1 ./run.sh test -m vision``, README); elsewhere they skip,
saying why. With ``MULTIJET_VISION=1`` set, a torchvision that does not work fails them instead.
"""
from __future__ import annotations

import multiprocessing.process
import os
import subprocess

import pytest

pytest_plugins = ["pytester"]  # tests/test_tiers.py runs inner sessions with this conftest

VISION = "vision: needs torchvision's models; runs in the vision environment (MULTIJET_VISION=1 ./run.sh test -m vision)"
TIERS = {
    "unit": "no process started, no MPI; added to every test not marked slow, mpi or slurm (tests/conftest.py)",
    "slow": "starts processes (entry points, launchers, multiprocessing) or takes seconds by itself",
    "mpi": "runs jobs under mpirun -np 2 (the distributed tier)",
    "slurm": "submits the generated job scripts to a Slurm cluster with sbatch (scripts/slurm_local.sh starts one)",
}
HAND_MARKED = ("slow", "mpi", "slurm")  # every test carries at most one of them; a test with none is unit


class ProcessInUnitTest(RuntimeError):
    """A unit test tried to start a process."""


def pytest_configure(config):
    # pyproject.toml lists them too (for tools that read only it); add the ones it lacks, once each.
    listed = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    for name, text in TIERS.items():
        if name not in listed:
            config.addinivalue_line("markers", f"{name}: {text}")
    if "vision" not in listed:
        config.addinivalue_line("markers", VISION)


@pytest.fixture(autouse=True)
def _torchvision_for_vision_tests(request):
    """A ``vision`` test skips where torchvision does not work, and fails there in the vision environment."""
    if request.node.get_closest_marker("vision") is None:
        return
    import models
    try:
        models.check_available("resnet50")
    except ImportError as exc:
        if os.environ.get("MULTIJET_VISION") == "1":
            pytest.fail(f"MULTIJET_VISION=1 but {exc}")
        pytest.skip(f"needs torchvision, which runs in the vision environment: MULTIJET_VISION=1 ./run.sh test "
                    f"-m vision ({str(exc).split(';')[0]})")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        tiers = [name for name in HAND_MARKED if item.get_closest_marker(name)]
        if len(tiers) > 1:
            keep = "slurm (it submits jobs)" if "slurm" in tiers else "mpi (it runs under mpirun)"
            raise pytest.UsageError(f"{item.nodeid} is marked both {tiers[0]} and {tiers[1]}; the tiers are "
                                    f"disjoint, keep only {keep}")
        if not tiers:
            item.add_marker(pytest.mark.unit)


# --- the unit tier starts no process ----------------------------------------------------------------------
# Patched at the lowest common points, so that every way in is caught: Popen._execute_child under
# subprocess.run/check_output/Popen (however imported), BaseProcess.start under every multiprocessing
# context, Pool and ProcessPoolExecutor, os.fork under os.spawn*.
_SPAWNERS = [(subprocess.Popen, "_execute_child", "subprocess.Popen"),
             (multiprocessing.process.BaseProcess, "start", "multiprocessing process start"),
             *[(os, name, f"os.{name}") for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp")
               if hasattr(os, name)]]


class _NoProcesses:
    def __init__(self, nodeid: str):
        self.nodeid = nodeid
        self.attempts: list[str] = []
        self.saved: list = []

    def _refuser(self, what: str):
        def refuse(*args, **kwargs):
            self.attempts.append(what)
            raise ProcessInUnitTest(f"{self.nodeid} started a process ({what}) but is in the unit tier, which "
                                    "starts none: mark it @pytest.mark.slow (or mpi if it runs mpirun)")
        return refuse

    def __enter__(self):
        for owner, name, what in _SPAWNERS:
            self.saved.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, self._refuser(what))
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved.clear()


def _guarded(item):
    """Run the wrapped phase with process starts refused if ``item`` is a unit test; fail it if it tried one
    and the error was swallowed on the way."""
    if item.get_closest_marker("unit") is None:
        return (yield)
    with _NoProcesses(item.nodeid) as guard:
        result = yield
    if guard.attempts:
        raise ProcessInUnitTest(f"{item.nodeid} tried to start a process ({guard.attempts[0]}) and the error "
                                "was caught on the way; mark it @pytest.mark.slow (or mpi)")
    return result


# Hook wrappers rather than an autouse fixture: setup covers the test's fixtures of every scope (a session
# fixture set up for a unit test runs inside it), which a function-scoped autouse fixture would not.
# Teardown is not guarded: a session fixture of a slow test may be torn down after a unit test.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _guarded(item))


# --- every mpirun a test starts has a session directory of its own ----------------------------------------
# Open MPI 4.x jobs started together on one node race for one shared session directory (bench/mpijob.py);
# an mpirun started without a fresh one of its own fails the test, before it starts. A job that the MPI
# library failed to start (orte_init and the like) is named, with Open MPI's lines, in the summary.
class SharedSessionDir(RuntimeError):
    """A test started mpirun without a session directory of its own (bench.mpijob)."""


_LIBRARY_FAILURES: list[tuple[str, str, list[str]]] = []  # (test, command, Open MPI's lines)
_CURRENT = {"test": ""}


def _check_session_dir(args, env) -> None:
    from bench import mpijob

    if not isinstance(args, (list, tuple)) or not args or os.path.basename(str(args[0])) != "mpirun":
        return
    base = (os.environ if env is None else env).get(mpijob.SESSION_VARS[0], "")
    if not (os.path.basename(base).startswith(mpijob.PREFIX) and os.path.isdir(base) and not os.listdir(base)):
        raise SharedSessionDir(f"{_CURRENT['test']} started mpirun without a fresh session directory of its own "
                               f"({mpijob.SESSION_VARS[0]}={base or 'unset'}): start it with bench.mpijob.run "
                               "or bench.mpijob.Job")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    from bench import mpijob

    if getattr(mpijob.Job, "_noted_by_conftest", False):  # an inner session (tests/test_tiers.py)
        return
    execute = subprocess.Popen._execute_child

    def checked(self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, *rest):
        _check_session_dir(args, env)
        return execute(self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, *rest)

    subprocess.Popen._execute_child = checked
    communicate = mpijob.Job.communicate

    def noted(self, *args, **kwargs):
        out, err = communicate(self, *args, **kwargs)
        if self.returncode:
            lines = mpijob.library_failure("\n".join(s if isinstance(s, str) else (s or b"").decode(errors="replace")
                                                     for s in (out, err)))
            if lines:
                _LIBRARY_FAILURES.append((_CURRENT["test"], " ".join(map(str, self.args))[:200], lines))
        return out, err

    mpijob.Job.communicate = noted
    mpijob.Job._noted_by_conftest = True


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    _CURRENT["test"] = item.nodeid
    try:
        return (yield)
    finally:
        _CURRENT["test"] = ""


def pytest_terminal_summary(terminalreporter):
    if not _LIBRARY_FAILURES:
        return
    terminalreporter.section("jobs the MPI library failed to start")
    for test, command, lines in _LIBRARY_FAILURES:
        terminalreporter.write_line(f"{test}: {command}")
        for line in lines[:12]:
            terminalreporter.write_line(f"    {line}")
