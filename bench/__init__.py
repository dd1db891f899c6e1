"""The harness: the entry points and what they share.

Entry points (each only parses its command line and calls into a package): ``bench.strong_scaling`` (the
strong-scaling benchmark and its sweep loop; the work is in ``bench.runner``), ``bench.evaluate`` (scores
saved models against the cut-based selection; ``reports.physics`` draws the result), ``bench.projection`` (the
performance model). Shared, torch-free: ``bench.records`` (the record schema, its one writer and one reader), ``bench.physics`` (the CNN against the
cuts: ROC, working point, significance, bootstrap), ``data.errors`` (the one way an entry point ends with
``error: ...``).
"""
