"""Allreduce costs of the algorithms MPI libraries and Horovod choose, in the alpha-beta model.

Pure functions of (ranks, bytes, latency alpha_s, bandwidth B): no torch, no MPI. The cost model and the
algorithms are those of Thakur, Rabenseifner & Gropp 2005 ("Optimization of Collective Communication
Operations in MPICH"); the ring of Patarasuk & Yuan 2009 (docs/physics-reference.md, 'Hardware'). The local
reduction (gamma) term is left out everywhere: at these sizes the network dominates.

    ring                 2 (p - 1) alpha + 2 (p - 1) / p * S / B      (reduce-scatter + allgather, p - 1 steps each)
    recursive doubling   log2(p) alpha + log2(p) * S / B             (every step exchanges the whole vector)
    rabenseifner         2 log2(p) alpha + 2 (p - 1) / p * S / B      (recursive-halving reduce-scatter +
                                                                        recursive-doubling allgather)
    binary tree          2 log2(p) (alpha + S / B)                   (reduce to a root, then broadcast)
    parameter server     2 alpha + 2 max(1, p / servers) * S / B     (each of ``servers`` PS tasks receives and
                                                                        sends p / servers shards of S)
    placed PS            2 alpha + 2 max(p * L_max, S) / B            (whole variables placed round-robin: L_max
                                                                        the busiest task's bytes)

p that is not a power of two costs one more exchange step in the recursive algorithms (MPICH folds the extra
ranks in first); log2 is rounded up.

Choosing like the libraries do:
* ``mpich`` (MPICH, and Intel MPI and Cray MPICH, which derive from it): recursive doubling for messages of
  at most ``short_bytes`` (MPIR_CVAR_ALLREDUCE_SHORT_MSG_SIZE, 2048 bytes by default), Rabenseifner above.
* ``ring`` (NCCL's and Baidu's ring; Horovod on GPUs in its 2018 paper): the ring at every size.
* ``parameter_server``: TensorFlow's gRPC parameter servers (not an allreduce: sharded push and pull).

Horovod fuses the gradients that are ready in one cycle into buffers of at most the fusion threshold
(``fusion_buckets``) and allreduces each buffer; its hierarchical allreduce reduces within a node first
(``hierarchical_s``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

ALGORITHMS = ("ring", "recursive_doubling", "rabenseifner", "binary_tree", "parameter_server")
POLICIES = ("mpich", "ring", "parameter_server")
MPICH_SHORT_BYTES = 2048  # MPIR_CVAR_ALLREDUCE_SHORT_MSG_SIZE default


def _log2_steps(p: int) -> int:
    return math.ceil(math.log2(p)) if p > 1 else 0


def ring_s(p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float) -> float:
    if p <= 1:
        return 0.0
    return 2 * (p - 1) * alpha_s + 2 * (p - 1) / p * nbytes / bandwidth_Bps


def recursive_doubling_s(p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float) -> float:
    steps = _log2_steps(p)
    return steps * (alpha_s + nbytes / bandwidth_Bps)


def rabenseifner_s(p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float) -> float:
    if p <= 1:
        return 0.0
    return 2 * _log2_steps(p) * alpha_s + 2 * (p - 1) / p * nbytes / bandwidth_Bps


def binary_tree_s(p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float) -> float:
    return 2 * _log2_steps(p) * (alpha_s + nbytes / bandwidth_Bps)


def parameter_server_s(p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float, servers: int = 1) -> float:
    """Push then pull of S bytes per worker through ``servers`` PS tasks on their own nodes: each server's
    link carries p / servers shards of S / servers in and out, which bounds the step."""
    return 2 * alpha_s + 2 * max(1.0, p / servers) * nbytes / bandwidth_Bps


PLACEMENTS = ("round_robin", "greedy", "replicated")
GLOBAL_STEP_BYTES = 8  # TensorFlow's int64 global_step, the first variable a PS task is given


def placement_loads(variables, servers: int, strategy: str = "round_robin") -> list[float]:
    """Bytes of gradient each PS task receives when TensorFlow places whole variables on ``servers`` tasks.

    ``variables``: creation order, each a byte count (a trainable variable) or (bytes, trainable). A variable is
    never split, so the busiest task holds at least the largest tensor however many tasks there are.
    ``strategy`` (tf.train.replica_device_setter and tf_cnn_benchmarks' variable managers):

    * ``round_robin``: every global variable, the int64 global_step first, to the tasks in turn
      (``replica_device_setter`` without ``ps_strategy``, ``_RoundRobinStrategy``);
    * ``greedy``: every global variable, global_step first, to the task holding the fewest bytes so far, the
      first such task on a tie (``GreedyLoadBalancingStrategy`` with ``byte_size_load_fn``, what
      tf_cnn_benchmarks' ``variable_update=parameter_server`` passes);
    * ``replicated``: round-robin over the trainable variables only, after global_step
      (``distributed_replicated``: the tasks hold copies of the trainable variables).

    Only trainable variables are exchanged, so only they count in the returned loads. Raises ValueError for an
    unknown strategy."""
    if strategy not in PLACEMENTS:
        raise ValueError(f"placement {strategy!r}: choose from {', '.join(PLACEMENTS)}")
    items = tuple((float(v), True) if not isinstance(v, tuple) else (float(v[0]), bool(v[1])) for v in variables)
    return list(_placed(items, max(1, servers), strategy))


@functools.lru_cache(maxsize=256)
def _placed(items: tuple, n: int, strategy: str) -> tuple:
    """``placement_loads`` on normalised (bytes, trainable) items; cached, since a fit's bisection asks the same
    placement thousands of times with only the link's rate changing."""
    if strategy == "replicated":
        items = tuple(v for v in items if v[1])
    items = ((float(GLOBAL_STEP_BYTES), False),) + items
    held, loads = [0.0] * n, [0.0] * n
    for i, (size, trainable) in enumerate(items):
        task = i % n if strategy != "greedy" else min(range(n), key=held.__getitem__)
        held[task] += size
        if trainable:
            loads[task] += size
    return tuple(loads)


def placed_parameter_server_s(p: int, tensor_bytes, alpha_s: float, bandwidth_Bps: float, servers: int,
                              colocated: bool = False, placement: str = "round_robin") -> float:
    """One synchronous step's push and pull through PS tasks holding whole variables (``placement_loads`` with
    ``placement``; ``tensor_bytes`` in creation order, each a byte count or (bytes, trainable)): the busiest
    task's link carries p x its bytes in (push) and out (pull), one after the other; each worker's own link
    carries its whole gradient in and out. The slower bounds.

    ``colocated``: each PS task runs on a node of its own among the p worker nodes (what tf_cnn_benchmarks'
    published multi-node runs did; ``servers`` <= p), so the share a worker sends to the task on its own node
    stays off the network. A node holding L bytes then takes (p - 1) x L in while its worker sends S - L out
    (full duplex: the larger bounds the push; the pull mirrors it). A node without a task sends S, which never
    exceeds what the busiest task takes when there are fewer tasks than nodes ((p - 1) x L_max >= S), so the
    busiest node bounds. One node alone sends nothing, whatever ``servers``. Raises ValueError for more
    colocated tasks than nodes (on more than one node)."""
    loads = placement_loads(tensor_bytes, servers, placement)
    total = sum(loads)  # the trainable bytes: the gradient
    if not colocated:
        return 2 * alpha_s + 2 * max(p * max(loads), total) / bandwidth_Bps
    if p <= 1:
        return 0.0  # one node: every task is local (the weak-scaling baseline)
    if len(loads) > p:
        raise ValueError(f"{len(loads)} colocated PS tasks on {p} nodes: at most one task per node")
    link = max(max((p - 1) * held, total - held) for held in loads)
    return 2 * alpha_s + 2 * link / bandwidth_Bps


COSTS = {"ring": ring_s, "recursive_doubling": recursive_doubling_s, "rabenseifner": rabenseifner_s,
         "binary_tree": binary_tree_s}


def choose(policy: str, p: int, nbytes: float, short_bytes: int = MPICH_SHORT_BYTES) -> str:
    """The algorithm ``policy`` uses for one allreduce of ``nbytes`` on ``p`` ranks."""
    if policy == "mpich":
        return "recursive_doubling" if nbytes <= short_bytes or p <= 2 else "rabenseifner"
    if policy in ("ring", "parameter_server"):
        return policy
    raise ValueError(f"unknown allreduce policy {policy!r}; choose from {', '.join(POLICIES)}")


def allreduce_s(policy: str, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float,
                servers: int = 1, short_bytes: int = MPICH_SHORT_BYTES) -> float:
    """Time of one allreduce of ``nbytes`` on ``p`` ranks with the algorithm ``policy`` picks."""
    if p <= 1:
        return 0.0
    algo = choose(policy, p, nbytes, short_bytes)
    if algo == "parameter_server":
        return parameter_server_s(p, nbytes, alpha_s, bandwidth_Bps, servers)
    return COSTS[algo](p, nbytes, alpha_s, bandwidth_Bps)


def fusion_buckets(tensor_bytes, threshold_bytes: float) -> list[float]:
    """Horovod's tensor fusion: tensors, in the order they become ready, packed into buffers of at most
    ``threshold_bytes``; a tensor larger than the threshold is reduced on its own. Threshold 0 disables
    fusion (one allreduce per tensor). Returns the size of each allreduce."""
    buckets: list[float] = []
    current = 0.0
    for size in tensor_bytes:
        if threshold_bytes <= 0 or size > threshold_bytes:
            if current:
                buckets.append(current)
                current = 0.0
            buckets.append(float(size))
        elif current + size > threshold_bytes:
            buckets.append(current)
            current = float(size)
        else:
            current += size
    if current:
        buckets.append(current)
    return buckets


def hierarchical_s(nodes: int, local: int, nbytes: float, intra: tuple[float, float], inter: tuple[float, float],
                   policy: str = "mpich") -> float:
    """Horovod's hierarchical allreduce: a ring reduce-scatter among the ``local`` ranks of a node, then
    ``local`` concurrent allreduces of S / local across ``nodes`` (they share the node's link, so each sees
    B / local), then a ring allgather within the node. ``intra`` and ``inter`` are (alpha_s, B)."""
    a_in, b_in = intra
    a_out, b_out = inter
    within = ring_s(local, nbytes, a_in, b_in) if local > 1 else 0.0
    across = allreduce_s(policy, nodes, nbytes / local, a_out, b_out / local) if nodes > 1 else 0.0
    return within + across


@dataclass(frozen=True)
class Exchange:
    """How one rank's gradients are averaged each step: a policy on a network, Horovod-style fusion and
    cycle, and optional hierarchy (``ranks_per_node`` > 1 with ``hierarchical``)."""

    policy: str
    alpha_s: float
    bandwidth_Bps: float
    fusion_bytes: float = 0.0  # 0: no fusion, every tensor on its own
    cycle_s: float = 0.0  # Horovod's cycle: a fused buffer waits half a cycle on average
    servers: int = 1  # parameter servers
    colocated: bool = False  # parameter servers on the worker nodes (placed_parameter_server_s)
    placement: str = "round_robin"  # how TensorFlow places variables on the PS tasks (placement_loads)
    ranks_per_node: int = 1
    hierarchical: bool = False
    intra: tuple[float, float] = (0.0, float("inf"))  # (alpha_s, B) inside a node

    def time_s(self, ranks: int, tensor_bytes, variables=None) -> float:
        """Seconds to average ``tensor_bytes`` (a list, in ready order) over ``ranks`` ranks. Parameter servers
        hold whole variables (``placed_parameter_server_s``): ``variables`` in creation order, each bytes or
        (bytes, trainable), where the network has a layer table; else ready order reversed, all trainable."""
        if self.policy == "parameter_server":
            placed = list(variables) if variables is not None else list(reversed(list(tensor_bytes)))
            return placed_parameter_server_s(ranks, placed, self.alpha_s, self.bandwidth_Bps, self.servers,
                                             self.colocated, self.placement)
        if ranks <= 1:
            return 0.0
        total = 0.0
        for size in fusion_buckets(tensor_bytes, self.fusion_bytes):
            total += self.cycle_s / 2 + self.one_s(ranks, size)
        return total

    def one_s(self, ranks: int, nbytes: float) -> float:
        """One allreduce of ``nbytes`` (a fused buffer or a bucket) over ``ranks`` ranks."""
        local = min(self.ranks_per_node, ranks)
        if local > 1 and self.hierarchical:
            return hierarchical_s(max(1, ranks // local), local, nbytes, self.intra,
                                  (self.alpha_s, self.bandwidth_Bps), self.policy)
        # A flat ring over several ranks per node: each node's link carries one ring edge, so the node link
        # bounds the bandwidth term as for one rank per node; latency grows with all ranks.
        return allreduce_s(self.policy, ranks, nbytes, self.alpha_s, self.bandwidth_Bps, self.servers)
