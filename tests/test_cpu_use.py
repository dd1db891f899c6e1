"""Spec (bench/runner/cpu_use.py): psutil readings of this process and its node, for the record's ``cpu``.

* ``sample`` reads CPU time (user + system, all threads) and context switches; ``between`` is the difference
  of two samples.
* ``node_facts`` gives the node's cores, the CPUs this process may use, its memory and load average.
* ``record`` merges rank 0's node facts with the ranks' figures and, when a rank ran under the utilisation
  floor on a node already loaded at the start, adds the load average to ``oversubscribed_why``.
"""
import time

from bench.runner import cpu_use
from bench.runner.cpu_use import Sample


def test_between_is_the_difference_of_two_samples():
    a, b = Sample(10.0, 3.5, 100, 7), Sample(12.5, 7.0, 130, 9)
    assert cpu_use.between(a, b) == {"wall_s": 2.5, "cpu_s": 3.5, "voluntary": 30, "involuntary": 2}


def test_a_busy_loop_shows_as_cpu_time():
    start = cpu_use.sample()
    while time.perf_counter() - start.wall_s < 0.2:  # about 0.2 s on one core
        pass
    got = cpu_use.between(start, cpu_use.sample())
    assert got["wall_s"] >= 0.2
    assert 0 < got["cpu_s"] <= 2 * got["wall_s"]  # this thread's work, whatever else the process does
    assert got["voluntary"] >= 0 and got["involuntary"] >= 0


def test_node_facts_names_cores_memory_and_load():
    facts = cpu_use.node_facts()
    assert set(facts) == {"physical_cores", "logical_cores", "process_cores", "memory_bytes",
                          "memory_available_bytes", "load_average_start"}
    assert facts["logical_cores"] >= facts["process_cores"] >= 1
    assert facts["physical_cores"] is None or 1 <= facts["physical_cores"] <= facts["logical_cores"]
    assert 0 < facts["memory_available_bytes"] <= facts["memory_bytes"]
    assert facts["load_average_start"] >= 0


NODE = {"physical_cores": 2, "logical_cores": 2, "process_cores": 2, "memory_bytes": 8, "memory_available_bytes": 4,
        "load_average_start": 0.5}
RANKS = {"cores_available": 2, "util_per_thread_min": 0.5, "oversubscribed": True,
         "oversubscribed_why": "the least-used rank ran 0.50 cores per thread (under 0.8)"}


def test_record_merges_node_and_ranks():
    assert cpu_use.record(NODE, RANKS, 0.8) == {**NODE, **RANKS}
    calm = dict(RANKS, util_per_thread_min=0.9, oversubscribed=False, oversubscribed_why=None)
    loaded = dict(NODE, load_average_start=3.5)
    assert cpu_use.record(loaded, calm, 0.8) == {**loaded, **calm}


def test_a_starved_rank_on_a_loaded_node_gets_the_load_in_the_reason():
    got = cpu_use.record(dict(NODE, load_average_start=3.25), RANKS, 0.8)
    assert got["oversubscribed_why"] == ("the least-used rank ran 0.50 cores per thread (under 0.8); the node's load "
                                         "average was 3.25 on 2 logical core(s) at the start (the last minute's "
                                         "runnable processes, earlier runs included)")
    # a GPU run (no floor) or one flagged for its cores alone: the load is not the reason
    crowded = dict(RANKS, util_per_thread_min=0.9, oversubscribed_why="2 rank(s) x 2 thread(s) = 4 on a node ...")
    assert cpu_use.record(dict(NODE, load_average_start=3.25), crowded, 0.8)["oversubscribed_why"] == \
        crowded["oversubscribed_why"]
    assert cpu_use.record(dict(NODE, load_average_start=3.25), RANKS, None)["oversubscribed_why"] == \
        RANKS["oversubscribed_why"]
