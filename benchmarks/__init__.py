"""Benchmarks that print the figures the README and docs quote. Run each as a module from the repository
root, e.g. ``python -m benchmarks.bench_step``; none is part of the test suite."""

import os
import sys

# mpirun's environment for the benchmarks that start it: Open MPI refuses root without both variables, and
# more ranks than cores without oversubscription; PYTHONPATH makes the repository importable.
MPI_ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1",
           "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}


def run_main(main) -> None:
    """Exit with ``main()``'s status; an output it cannot write or an input that is not a readable file
    (data.files.WriteError, InputError, OutputPathError, data.base.DataError) ends it with one ``error:``
    line naming the path, and status 2."""
    from data.base import DataError
    from data.errors import fail
    from data.files import InputError, OutputPathError, WriteError

    try:
        code = main()
    except (WriteError, InputError, OutputPathError, DataError) as exc:
        code = fail(str(exc))
    sys.exit(code)
