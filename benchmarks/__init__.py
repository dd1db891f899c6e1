"""Benchmarks that print the figures the README and docs quote. Run each as a module from the repository
root, e.g. ``python -m benchmarks.bench_step``; none is part of the test suite."""
