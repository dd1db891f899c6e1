"""One small MPI job of the session-directory stress test (tests/test_mpi_session.py): every rank checks
that Open MPI made its session directory under this job's own base, the ranks sum their rank numbers, and
rank 0 writes the job's record, one JSON line, to the file named by argv[1]."""
import json
import os
import sys
from pathlib import Path

from mpi4py import MPI

comm = MPI.COMM_WORLD
base = os.environ.get("OMPI_MCA_orte_tmpdir_base", "")
inside = sorted(p.name for p in Path(base).glob("ompi.*")) if base else []
ranks = comm.allreduce(comm.Get_rank())
agreed = comm.allgather((base, bool(inside)))
if comm.Get_rank() == 0:
    record = {"world_size": comm.Get_size(), "rank_sum": ranks, "session_base": base, "session_dirs": inside,
              "every_rank_in_base": all(b == base and found for b, found in agreed)}
    Path(sys.argv[1]).write_text(json.dumps(record) + "\n")
