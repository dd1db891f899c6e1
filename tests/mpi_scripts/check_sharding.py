"""Run under mpirun: every rank builds its epoch plan; rank 0 checks they are disjoint and complete."""
import sys

import numpy as np

from bench.runner.comm import init_world
from bench.runner.sampler import epoch_plan

world = init_world()
train = np.arange(100, 100 + 1000)
G = 96
for epoch in range(3):
    mine = epoch_plan(train, epoch, seed=4, global_batch=G, world_size=world.size, rank=world.rank,
                      micro_batch=G // world.size // 2)
    plans = world.gather(mine)
    if world.is_root:
        steps = {p.shape[0] for p in plans}
        seen = np.concatenate([p.reshape(-1) for p in plans])
        assert steps == {len(train) // G}, steps
        assert len(np.unique(seen)) == len(seen) == (len(train) // G) * G, "overlap or gap"
        assert set(seen) <= set(train)
if world.is_root:
    print(f"sharding ok on {world.size} ranks")
sys.exit(0)
