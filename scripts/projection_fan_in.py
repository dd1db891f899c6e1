"""Exploration, not part of the model: a many-to-one goodput loss on the parameter-server links, tried on the
published points (docs/projection.md, 'What is still missing').

    python scripts/projection_fan_in.py

Multiplies every parameter-server link's bandwidth by min(1, (p / onset) ** -gamma) for p workers (a per-task
goodput that falls once many workers send at once, the shape TCP incast takes), over a grid of onsets and
exponents, refits the profile file's fits each time, and prints the out-of-sample coverage, the fraction within
25 % and the points off by more than 25 %. The first line is the model as it is. The grid is the point: onset
and exponent are not in any public source, so picking the best cell would fit them to the points they should
predict; the model keeps none of them.
"""
from __future__ import annotations

from bench.projection import collectives, published
from bench.projection.profiles import load


def summary(label: str) -> None:
    rows = published.reproduce(load())
    cov = published.coverage(rows)["out_of_sample"]
    far = {r["name"]: f"{r['out_of_sample']['rel_error']:+.0%}" for r in rows
           if abs(r["out_of_sample"]["rel_error"]) > 0.25}
    print(f"{label:<22} covered {cov['covered']:.0%}  within 25 % {cov['within']:.0%}  off: {far}")


def main() -> None:
    plain = collectives.placed_parameter_server_s
    summary("no goodput loss")
    try:
        for onset in (16, 32, 64):
            for gamma in (0.3, 0.6, 0.9, 1.2):
                def lossy(p, tensors, alpha, bandwidth, servers, colocated=False, placement="round_robin",
                          _o=onset, _g=gamma):
                    loss = min(1.0, (max(1, p) / _o) ** -_g)
                    return plain(p, tensors, alpha, bandwidth * loss, servers, colocated, placement)
                collectives.placed_parameter_server_s = lossy
                summary(f"onset {onset}, gamma {gamma}")
    finally:
        collectives.placed_parameter_server_s = plain


if __name__ == "__main__":
    main()
