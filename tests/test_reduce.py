"""Spec (bench/runner/reduce.py): each rank summarises its epochs (``rank_summary``), rank 0 reduces the
summaries (``reduce_ranks``). An epoch's time is the slowest rank's in that epoch; the first epoch is the
warm-up, kept apart and in no median or mean; compute / exposed communication / data wait come from the
busiest rank (largest sum of measured step times), whichever rank had the slowest epochs; the median step
is over all measured steps of all ranks, ``step_s_max_rank`` the largest per-rank median; images/s is the
training events over the median measured epoch, None without a measured epoch. CPU use (``reduce_cpu``): each
rank's CPU time over wall time in its measured epochs, per torch thread, over ranks (median, least, most);
switches per measured epoch of the most-switched rank; oversubscribed when a node's ranks x threads exceed its
cores or the least-used rank ran under the floor (none on a GPU), with the reasons.

Three hand-made ranks, 4 epochs of 2 steps each (epoch 0 is the warm-up). Every expected number below is
worked out by hand in the comments, not by calling the code under test. Times are multiples of 1/4, so
sums, maxima and medians are exact in floating point; means over 3 epochs use approx.

                 epoch_s (e0 | e1  e2  e3)    measured steps (e1; e2; e3)        compute / comm / wait per e1..e3
  rank 0 (rss 100) 12.0 | 3.0  4.5  2.5      1.0 1.5; 1.0 1.0; 1.0 0.5          2.0 1.5 1.0 / .25 .25 .25 / .25 .25 .25
  rank 1 (rss 300) 11.0 | 2.75 3.25 3.0      1.5 1.5; 1.5 1.5; 1.5 2.0          2.0 2.5 3.0 / .75 .25 .5  / .25 .25 0
  rank 2 (rss 500) 13.0 | 4.0  3.0  5.5      0.75 1.25; 0.75 0.75; 1.25 1.75    1.0 .5  2.0 / .5  .5  .5  / .5  .5  .5
  warm-up steps: rank 0 5.0 5.0, rank 1 4.0 4.0, rank 2 6.0 6.0

Busy (sum of measured steps): rank 0 2.5+2.0+1.5 = 6.0; rank 1 3.0+3.0+3.5 = 9.5; rank 2 2.0+1.5+3.0 = 6.5.
Rank 1 is the busiest, yet it is never the slowest in an epoch (rank 2 is, in e0, e1, e3; rank 0 in e2).
Counting the warm-up steps would make rank 2 the busiest (6.5+12 = 18.5 > 9.5+8 = 17.5 > 6.0+10 = 16.0).
"""
from dataclasses import replace

import pytest

from bench.runner.reduce import rank_summary, reduce_cpu, reduce_ranks
from bench.runner.train import EpochTimes


def epoch(epoch_s, steps, compute, comm, wait):
    return EpochTimes(epoch_s=epoch_s, step_s=list(steps), compute_s=compute, comm_s=comm, data_wait_s=wait)


WARMUP = {0: epoch(12.0, [5.0, 5.0], 9.0, 0.5, 0.5),
          1: epoch(11.0, [4.0, 4.0], 7.0, 0.5, 0.5),
          2: epoch(13.0, [6.0, 6.0], 11.0, 0.5, 0.5)}
EPOCHS = {
    0: [WARMUP[0], epoch(3.0, [1.0, 1.5], 2.0, 0.25, 0.25), epoch(4.5, [1.0, 1.0], 1.5, 0.25, 0.25),
        epoch(2.5, [1.0, 0.5], 1.0, 0.25, 0.25)],
    1: [WARMUP[1], epoch(2.75, [1.5, 1.5], 2.0, 0.75, 0.25), epoch(3.25, [1.5, 1.5], 2.5, 0.25, 0.25),
        epoch(3.0, [1.5, 2.0], 3.0, 0.5, 0.0)],
    2: [WARMUP[2], epoch(4.0, [0.75, 1.25], 1.0, 0.5, 0.5), epoch(3.0, [0.75, 0.75], 0.5, 0.5, 0.5),
        epoch(5.5, [1.25, 1.75], 2.0, 0.5, 0.5)],
}
RSS = {0: 100, 1: 300, 2: 500}
TRAIN_EVENTS = 900


def summaries():
    return [rank_summary(EPOCHS[r], RSS[r]) for r in range(3)]


def test_rank_summary_keeps_the_warm_up_out_of_steps_and_means():
    s = rank_summary(EPOCHS[0], RSS[0])
    assert s["epoch_s"] == [12.0, 3.0, 4.5, 2.5]  # every epoch, the warm-up first
    assert s["steps"] == [1.0, 1.5, 1.0, 1.0, 1.0, 0.5]  # measured steps only, in order
    assert s["busy"] == 6.0  # 2.5 + 2.0 + 1.5
    assert s["step_median"] == 1.0  # sorted 0.5 1 1 1 1 1.5 -> (1 + 1) / 2
    assert s["compute"] == pytest.approx(1.5)  # (2.0 + 1.5 + 1.0) / 3, not the warm-up's 9.0
    assert s["comm"] == pytest.approx(0.25)
    assert s["wait"] == pytest.approx(0.25)
    assert s["rss"] == 100 and isinstance(s["rss"], int)


def test_rank_summary_of_rank_1_and_2():
    one = rank_summary(EPOCHS[1], RSS[1])
    assert one["busy"] == 9.5 and one["step_median"] == 1.5  # sorted 1.5 x5, 2.0
    assert one["compute"] == pytest.approx(7.5 / 3)  # (2.0 + 2.5 + 3.0) / 3 = 2.5
    assert one["comm"] == pytest.approx(1.5 / 3)  # (0.75 + 0.25 + 0.5) / 3 = 0.5
    assert one["wait"] == pytest.approx(0.5 / 3)  # (0.25 + 0.25 + 0) / 3
    two = rank_summary(EPOCHS[2], RSS[2])
    assert two["busy"] == 6.5  # not 18.5: the warm-up's 6.0 + 6.0 are out
    assert two["step_median"] == 1.0  # sorted 0.75 0.75 0.75 1.25 1.25 1.75 -> (0.75 + 1.25) / 2


def test_three_ranks_reduce_to_the_hand_worked_record_fields():
    got = reduce_ranks(summaries(), TRAIN_EVENTS)
    # Per epoch, the slowest rank: e0 max(12, 11, 13) = 13; e1 max(3, 2.75, 4) = 4 (rank 2);
    # e2 max(4.5, 3.25, 3) = 4.5 (rank 0); e3 max(2.5, 3, 5.5) = 5.5 (rank 2).
    assert got["warmup_epoch_s"] == 13.0
    assert got["epoch_s"] == [4.0, 4.5, 5.5]
    # 900 / median(4.0, 4.5, 5.5) = 900 / 4.5 = 200. (Wrong answers it rules out: the mean epoch 14/3 gives
    # 192.9; rank 2's own epochs, median(4, 3, 5.5) = 4, give 225; the warm-up in, median(13, 4, 4.5, 5.5) = 5,
    # gives 180.)
    assert got["images_per_s"] == 200.0
    # All 18 measured steps sorted: 0.5, 0.75 x3, 1.0 x4, 1.25 x2, 1.5 x6, 1.75, 2.0; the 9th and 10th are
    # 1.25 and 1.25 -> 1.25. (The median of the per-rank medians 1.0, 1.5, 1.0 would be 1.0; the mean 22/18.)
    assert got["step_s_median"] == 1.25
    assert got["step_s_max_rank"] == 1.5  # max(1.0, 1.5, 1.0): rank 1's
    # The busiest rank is rank 1 (9.5 > 6.5 > 6.0), not rank 2 whose epochs were the slowest.
    assert got["compute_s"] == pytest.approx(2.5)
    assert got["comm_s"] == pytest.approx(0.5)
    assert got["data_wait_s"] == pytest.approx(0.5 / 3)
    assert got["peak_rss_bytes"] == 500  # the largest rank's (rank 2), not the busiest's 300
    assert set(got) == {"warmup_epoch_s", "epoch_s", "images_per_s", "step_s_median", "step_s_max_rank",
                        "compute_s", "comm_s", "data_wait_s", "peak_rss_bytes"}


def test_the_order_of_the_ranks_does_not_matter():
    forward = reduce_ranks(summaries(), TRAIN_EVENTS)
    assert reduce_ranks(summaries()[::-1], TRAIN_EVENTS) == forward


def test_two_ranks_busiest_is_not_the_slowest():
    # Rank 0 and rank 2 alone: epochs max(12, 13) = 13 | max(3, 4) = 4, max(4.5, 3) = 4.5, max(2.5, 5.5) = 5.5;
    # busy 6.0 against 6.5: rank 2 is the busiest here; its compute (1 + 0.5 + 2) / 3 = 7/6, comm 0.5, wait 0.5.
    got = reduce_ranks([rank_summary(EPOCHS[0], 100), rank_summary(EPOCHS[2], 500)], 45)
    assert got["warmup_epoch_s"] == 13.0 and got["epoch_s"] == [4.0, 4.5, 5.5]
    assert got["images_per_s"] == 10.0  # 45 / 4.5
    # 12 steps sorted: 0.5, 0.75 x3, 1.0 x4, 1.25 x2, 1.5, 1.75: 6th and 7th are 1.0 and 1.0.
    assert got["step_s_median"] == 1.0
    assert got["step_s_max_rank"] == 1.0  # both ranks' medians are 1.0
    assert (got["compute_s"], got["comm_s"], got["data_wait_s"]) == pytest.approx((3.5 / 3, 0.5, 0.5))


def test_one_epoch_only_has_no_measured_epoch():
    # Only the warm-up: it is reported apart, and nothing else can be measured.
    ranks = [rank_summary([WARMUP[0]], 100), rank_summary([WARMUP[1]], 300)]
    assert ranks[0]["steps"] == [] and ranks[0]["busy"] == 0.0 and ranks[0]["step_median"] is None
    assert (ranks[0]["compute"], ranks[0]["comm"], ranks[0]["wait"]) == (0.0, 0.0, 0.0)  # no division by zero
    got = reduce_ranks(ranks, TRAIN_EVENTS)
    assert got["warmup_epoch_s"] == 12.0  # max(12, 11)
    assert got["epoch_s"] == []
    assert got["images_per_s"] is None
    assert got["step_s_median"] is None and got["step_s_max_rank"] is None
    assert (got["compute_s"], got["comm_s"], got["data_wait_s"]) == (0.0, 0.0, 0.0)
    assert got["peak_rss_bytes"] == 300


def test_no_ranks_is_refused():
    with pytest.raises(ValueError, match="no rank summaries"):
        reduce_ranks([], TRAIN_EVENTS)


def test_ranks_with_different_numbers_of_epochs_are_refused():
    short = rank_summary(EPOCHS[1][:3], RSS[1])  # 3 epochs against 4
    with pytest.raises(ValueError, match="same, non-zero number of epochs"):
        reduce_ranks([rank_summary(EPOCHS[0], RSS[0]), short], TRAIN_EVENTS)


def test_ranks_without_any_epoch_are_refused():
    with pytest.raises(ValueError, match="same, non-zero number of epochs"):
        reduce_ranks([rank_summary([], 1), rank_summary([], 2)], TRAIN_EVENTS)


# --- CPU use (bench/runner/cpu_use.py samples; reduce_cpu) ---------------------------------------------------
# Each measured epoch of the ranks above gets (wall s, CPU s, voluntary, involuntary) switches; the warm-up a
# huge sample that must stay out. Ranks 0 and 1 share a node of 4 cores, rank 2 has a node of 2; 2 threads each.
#
#            wall s (e1 e2 e3 = sum)    CPU s (sum)        util  per thread   voluntary (/3)   involuntary (/3)
#   rank 0   3.0 4.5 2.5 = 10.0         5 8 4 = 17         1.7   0.85         30 30 30 -> 30    3 6 9 -> 6
#   rank 1   2.75 3.25 3.0 = 9.0        4 4.5 5 = 13.5     1.5   0.75         10 10 10 -> 10   30 30 60 -> 40
#   rank 2   4.0 3.0 5.5 = 12.5         8 6 11 = 25        2.0   1.0          0 0 0 -> 0       3 3 3 -> 3
CPU = {0: [(3.0, 5.0, 30, 3), (4.5, 8.0, 30, 6), (2.5, 4.0, 30, 9)],
       1: [(2.75, 4.0, 10, 30), (3.25, 4.5, 10, 30), (3.0, 5.0, 10, 60)],
       2: [(4.0, 8.0, 0, 3), (3.0, 6.0, 0, 3), (5.5, 11.0, 0, 3)]}
PLACEMENT = {0: {"threads": 2, "ranks_on_node": 2, "node_cores": 4},
             1: {"threads": 2, "ranks_on_node": 2, "node_cores": 4},
             2: {"threads": 2, "ranks_on_node": 1, "node_cores": 2}}


def sampled(rank):
    warmup = replace(EPOCHS[rank][0], cpu={"wall_s": 12.0, "cpu_s": 100.0, "voluntary": 999, "involuntary": 999})
    return [warmup] + [replace(e, cpu=dict(zip(("wall_s", "cpu_s", "voluntary", "involuntary"), c)))
                       for e, c in zip(EPOCHS[rank][1:], CPU[rank])]


def cpu_summaries(placement=PLACEMENT):
    return [rank_summary(sampled(r), RSS[r], placement[r]) for r in range(3)]


def test_rank_summary_sums_the_measured_epochs_cpu_samples():
    s = cpu_summaries()[0]["cpu"]
    assert s == {"threads": 2, "ranks_on_node": 2, "node_cores": 4, "epochs": 3,  # the warm-up's 100 s left out
                 "wall_s": 10.0, "cpu_s": 17.0, "voluntary": 90, "involuntary": 18}
    assert rank_summary(EPOCHS[0], RSS[0])["cpu"] is None  # no placement: nothing to judge
    # an epoch without a sample (resumed from an older checkpoint): the placement stays, the sums are unknown
    assert rank_summary(EPOCHS[0], RSS[0], PLACEMENT[0])["cpu"]["cpu_s"] is None


def test_three_ranks_reduce_to_the_hand_worked_cpu_figures():
    got = reduce_cpu(cpu_summaries(), util_floor=0.8)
    assert got["ranks_x_threads"] == 4  # max(2 x 2, 2 x 2, 1 x 2)
    assert got["cores_available"] == 2  # rank 2's node
    assert got["util_median"] == pytest.approx(1.7)  # median(1.7, 1.5, 2.0)
    assert got["util_per_thread_median"] == pytest.approx(0.85)  # median(0.85, 0.75, 1.0)
    assert got["util_per_thread_min"] == pytest.approx(0.75)  # rank 1
    assert got["util_per_thread_max"] == pytest.approx(1.0)  # rank 2
    assert got["voluntary_ctx_switches"] == 30  # rank 0: 90 / 3
    assert got["involuntary_ctx_switches"] == 40  # rank 1: 120 / 3, not the warm-up's 999
    # No node is crowded (4 <= 4, 2 <= 2), but rank 1 ran 0.75 < 0.8 cores per thread.
    assert got["oversubscribed"] is True
    assert got["oversubscribed_why"] == "the least-used rank ran 0.75 cores per thread (under 0.8)"


def test_without_a_utilisation_floor_only_crowded_nodes_count():
    got = reduce_cpu(cpu_summaries(), util_floor=None)  # a GPU run: its threads wait for the device
    assert (got["oversubscribed"], got["oversubscribed_why"]) == (False, None)
    assert got["util_per_thread_min"] == pytest.approx(0.75)  # still measured and recorded


def test_more_threads_than_cores_on_a_node_is_oversubscribed():
    # Ranks 0 and 1 on one node of 2 cores with 2 threads each: 4 threads for 2 cores.
    crowded = {r: dict(p, node_cores=2) for r, p in PLACEMENT.items()}
    got = reduce_cpu(cpu_summaries(crowded), util_floor=0.5)  # 0.75 is above this floor: the cores alone decide
    assert got["oversubscribed"] is True and got["cores_available"] == 2
    assert got["oversubscribed_why"] == "2 rank(s) x 2 thread(s) = 4 on a node with 2 available core(s)"
    both = reduce_cpu(cpu_summaries(crowded), util_floor=0.8)
    assert both["oversubscribed_why"] == ("2 rank(s) x 2 thread(s) = 4 on a node with 2 available core(s); "
                                          "the least-used rank ran 0.75 cores per thread (under 0.8)")


def test_cpu_figures_without_samples_or_placement():
    unsampled = [rank_summary(EPOCHS[r], RSS[r], PLACEMENT[r]) for r in range(3)]
    got = reduce_cpu(unsampled, util_floor=0.8)
    assert (got["util_median"], got["util_per_thread_min"], got["involuntary_ctx_switches"]) == (None, None, None)
    assert (got["oversubscribed"], got["ranks_x_threads"]) == (False, 4)
    only_warmup = [rank_summary(sampled(r)[:1], RSS[r], PLACEMENT[r]) for r in range(3)]
    assert reduce_cpu(only_warmup, 0.8)["util_median"] is None  # no measured epoch, no division by zero
    assert reduce_cpu(summaries(), 0.8) is None  # ranks that gave no placement
