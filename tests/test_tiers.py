"""Spec (tests/conftest.py): every test is in exactly one tier; unmarked tests are ``unit``; a unit test
that starts a process fails with a message saying to mark it slow, also when the code under test catches
the error, also when the process is started by a session fixture it needs; slow tests may start processes.

Each case runs an inner pytest session in this process (pytester), with the real conftest.
"""
from pathlib import Path

import pytest

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()


@pytest.fixture
def inner(pytester):
    pytester.makeconftest(CONFTEST)
    return pytester


def test_unmarked_tests_are_unit_and_the_tiers_partition_the_suite(inner):
    inner.makepyfile("""
        import pytest
        def test_plain(): pass
        @pytest.mark.slow
        def test_slow(): pass
        @pytest.mark.mpi
        def test_mpi(): pass
        @pytest.mark.slurm
        def test_slurm(): pass
    """)
    for tier, name in [("unit", "test_plain"), ("slow", "test_slow"), ("mpi", "test_mpi"), ("slurm", "test_slurm")]:
        result = inner.runpytest("-m", tier, "--collect-only", "-q")
        assert [line.split("::")[1] for line in result.outlines if "::" in line] == [name]


def test_slow_and_mpi_together_is_refused(inner):
    inner.makepyfile("""
        import pytest
        @pytest.mark.slow
        @pytest.mark.mpi
        def test_both(): pass
    """)
    result = inner.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_both is marked both slow and mpi*"])


@pytest.mark.parametrize("other", ["slow", "mpi"])
def test_slurm_with_another_tier_is_refused(inner, other):
    inner.makepyfile(f"""
        import pytest
        @pytest.mark.slurm
        @pytest.mark.{other}
        def test_both(): pass
    """)
    result = inner.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*test_both is marked both {other} and slurm*keep only slurm*"])


@pytest.mark.parametrize("start", [
    "subprocess.run(['true'])",
    "subprocess.Popen(['true']).wait()",
    "os.system('true')",
    "multiprocessing.get_context('fork').Process(target=print).start()",
    "multiprocessing.get_context('spawn').Process(target=print).start()",
    "concurrent.futures.ProcessPoolExecutor(1).submit(print).result()",
])
def test_a_unit_test_that_starts_a_process_fails_saying_mark_it_slow(inner, start):
    inner.makepyfile(f"""
        import concurrent.futures, multiprocessing, os, subprocess
        def test_spawns():
            {start}
    """)
    result = inner.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_spawns started a process (*) but is in the unit tier*mark it @pytest.mark.slow*"])


def test_a_swallowed_refusal_still_fails_the_test(inner):
    inner.makepyfile("""
        import subprocess
        def test_hides_it():
            try:
                subprocess.run(["true"])
            except Exception:
                pass
    """)
    result = inner.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_hides_it tried to start a process (subprocess.Popen)*caught on the way*"])


def test_a_session_fixture_that_starts_a_process_fails_the_unit_test_needing_it(inner):
    inner.makepyfile("""
        import subprocess
        import pytest
        @pytest.fixture(scope="session")
        def made():
            return subprocess.run(["true"]).returncode
        def test_needs_it(made): pass
    """)
    result = inner.runpytest("-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_needs_it started a process (subprocess.Popen)*"])


def test_spawning_is_restored_after_each_unit_test(inner):
    inner.makepyfile("""
        import os, subprocess, multiprocessing.process
        ORIGINAL = (subprocess.Popen._execute_child, multiprocessing.process.BaseProcess.start, os.system)
        def test_guarded():
            assert subprocess.Popen._execute_child is not ORIGINAL[0]
        def test_after():
            pass
        def teardown_module():
            now = (subprocess.Popen._execute_child, multiprocessing.process.BaseProcess.start, os.system)
            assert now == ORIGINAL
    """)
    inner.runpytest("-q").assert_outcomes(passed=2)
