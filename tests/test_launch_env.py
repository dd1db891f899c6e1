"""Spec: what a process learns from its launcher's and scheduler's environment, without MPI.

A launcher that started several tasks (srun's step: SLURM_STEP_NUM_TASKS; Open MPI's mpirun:
OMPI_COMM_WORLD_SIZE; PMI_SIZE; a rank above 0 in PMIX_RANK and the like) while MPI gives this process a
world of one is refused with a usage error naming the variable and the fix, and bench.strong_scaling exits 2
before any work: srun without a PMI (MpiDefault=none) or an mpirun of another MPI than mpi4py's would
otherwise run N independent one-rank jobs. A single process inside an allocation (an sbatch script, whose
SLURM_NTASKS is the allocation's, or `srun -n 1`) runs. Records name the scheduler's job (Slurm, PBS) from
the environment, null outside one. SIGUSR1 is noted, not fatal, and every rank learns that it came.
"""
import os
import signal
import sys
import types

import pytest

from bench.runner import comm, stop
from bench.runner.comm import WorldOfOne, check_world_size, init_world, launched_tasks
from bench.runner.environment import scheduler

# An sbatch script of a 2-task allocation (as Slurm 22.05 sets it): one process, not a job step.
BATCH = {"SLURM_JOB_ID": "41", "SLURM_JOB_NODELIST": "vm", "SLURM_NTASKS": "2", "SLURM_NPROCS": "2",
         "SLURM_PROCID": "0", "SLURM_CPUS_PER_TASK": "1", "SLURM_TASKS_PER_NODE": "2"}
# Task 1 of `srun` (no --mpi, MpiDefault=none) in that allocation: a step of 2 tasks, no PMI variable.
SRUN_NO_PMI = {**BATCH, "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1"}


@pytest.fixture
def clean_env(monkeypatch):
    """No launcher or scheduler variable of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith(("SLURM_", "OMPI_", "PMI", "PMIX_", "MV2_", "PALS_", "FLUX_", "PBS_")) \
                or name in ("MPI_LOCALNRANKS", "MULTIJET_FORCE_MPI"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def usr1():
    saved = signal.getsignal(signal.SIGUSR1)
    stop.reset()
    yield
    signal.signal(signal.SIGUSR1, saved)
    stop.reset()


@pytest.mark.parametrize("env,expected", [
    ({}, None),
    (BATCH, None),  # the allocation's SLURM_NTASKS is not a launch
    ({**BATCH, "SLURM_STEP_NUM_TASKS": "1"}, (1, "SLURM_STEP_NUM_TASKS=1")),  # srun -n 1
    (SRUN_NO_PMI, (2, "SLURM_STEP_NUM_TASKS=2")),
    ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3"}, (4, "OMPI_COMM_WORLD_SIZE=4")),
    # mpirun inside a step of one task: the MPI's own launcher is the more specific
    ({**BATCH, "SLURM_STEP_NUM_TASKS": "1", "OMPI_COMM_WORLD_SIZE": "2"}, (2, "OMPI_COMM_WORLD_SIZE=2")),
    ({"PMI_SIZE": "8", "PMI_RANK": "0"}, (8, "PMI_SIZE=8")),
    ({"PMIX_RANK": "3"}, (4, "PMIX_RANK=3")),  # a rank above 0 cannot be alone
    ({"PMIX_RANK": "0"}, None),
    ({"PALS_RANKID": "1"}, (2, "PALS_RANKID=1")),
])
def test_launched_tasks_reads_the_launch_not_the_allocation(env, expected):
    assert launched_tasks(env) == expected


def test_srun_without_a_pmi_is_refused_naming_the_fix(clean_env):
    for name, value in SRUN_NO_PMI.items():
        clean_env.setenv(name, value)
    with pytest.raises(WorldOfOne) as err:
        init_world()
    text = str(err.value)
    assert "SLURM_STEP_NUM_TASKS=2" in text and "world of one" in text
    assert "srun --mpi=pmix" in text and "--launch mpirun" in text


@pytest.mark.parametrize("env", [BATCH, {**BATCH, "SLURM_STEP_NUM_TASKS": "1", "SLURM_STEP_ID": "0"}, {}],
                         ids=["sbatch-script", "srun-n1", "no-scheduler"])
def test_a_single_process_runs_inside_an_allocation(clean_env, env):
    for name, value in env.items():
        clean_env.setenv(name, value)
    world = init_world()
    assert (world.size, world.rank, world.mpi) == (1, 0, None)


def test_mpirun_of_another_mpi_is_refused(clean_env):
    """Open MPI's mpirun started two tasks, but mpi4py was built against another MPI, whose world (a
    singleton) holds one rank. mpi4py is replaced by a stand-in: no MPI is initialised."""
    fake = types.SimpleNamespace(COMM_WORLD=types.SimpleNamespace(size=1, rank=0),
                                 Get_library_version=lambda: "MPICH Version: 4.1.2\nMPICH Release date: ...")
    clean_env.setitem(sys.modules, "mpi4py", types.SimpleNamespace(MPI=fake))
    clean_env.setenv("OMPI_COMM_WORLD_SIZE", "2")
    clean_env.setenv("OMPI_COMM_WORLD_RANK", "0")
    clean_env.setenv("OMPI_MCA_mpi_yield_when_idle", "1")  # init_world sets it; restored after the test
    with pytest.raises(WorldOfOne) as err:
        init_world()
    text = str(err.value)
    assert "OMPI_COMM_WORLD_SIZE=2" in text and "MPICH Version: 4.1.2" in text and "rebuild mpi4py" in text


def test_a_matching_world_passes():
    check_world_size(2, {"OMPI_COMM_WORLD_SIZE": "2"}, "Open MPI v4.1.4")
    check_world_size(1, {"OMPI_COMM_WORLD_SIZE": "1"}, "Open MPI v4.1.4")
    check_world_size(1, BATCH, None)


def test_the_entry_point_exits_2_before_any_work(clean_env, usr1, tmp_path, capsys):
    from bench import strong_scaling
    for name, value in SRUN_NO_PMI.items():
        clean_env.setenv(name, value)
    out = tmp_path / "r.jsonl"
    assert strong_scaling.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the launcher started 2 tasks") and "srun --mpi=pmix" in err
    assert not out.exists()


def test_scheduler_of_a_slurm_job():
    assert scheduler(BATCH) == {"kind": "slurm", "job_id": "41", "nodelist": "vm", "cpus_per_task": 1}
    no_cpus = {k: v for k, v in BATCH.items() if k != "SLURM_CPUS_PER_TASK"}
    assert scheduler(no_cpus)["cpus_per_task"] is None
    array = {**BATCH, "SLURM_JOB_ID": "57", "SLURM_ARRAY_JOB_ID": "55", "SLURM_ARRAY_TASK_ID": "2"}
    assert scheduler(array)["job_id"] == "55_2"


def test_scheduler_of_a_pbs_job_and_outside_one(tmp_path):
    nodefile = tmp_path / "nodes"
    nodefile.write_text("n001\nn001\nn002\n")
    assert scheduler({"PBS_JOBID": "123.pbs", "PBS_NODEFILE": str(nodefile)}) == \
        {"kind": "pbs", "job_id": "123.pbs", "nodelist": "n001,n002", "cpus_per_task": None}
    assert scheduler({"PBS_JOBID": "123.pbs"})["nodelist"] is None
    assert scheduler({}) is None
    assert scheduler({"OMPI_COMM_WORLD_SIZE": "2"}) is None


def test_sigusr1_is_noted_and_agreed_not_fatal(usr1):
    one = comm.World(rank=0, size=1, local_rank=0, local_size=1, nodes=1, ranks_per_node=1, hosts=("h",))
    stop.install()
    assert not stop.requested() and not stop.agreed(one)
    os.kill(os.getpid(), signal.SIGUSR1)  # delivered to this thread before os.kill returns
    assert stop.requested() and stop.agreed(one)
