"""The environment every test that launches mpirun (or a subprocess of the harness) runs with."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Open MPI refuses root without both variables, and more ranks than cores without oversubscription;
# PYTHONPATH makes the repository importable from scripts outside it (tests/mpi_scripts/*).
MPI_ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "PYTHONPATH": str(ROOT)}
