#!/usr/bin/env bash
# Sourced (not run) by the scripts that start mpirun: gives this shell's jobs an Open MPI session
# directory of their own, removed when the shell exits (bench/mpijob.py says why; tests/test_mpi_session.py
# checks these lines are bench.mpijob.SHELL_LINES).
# Each job its own Open MPI session directory: jobs started together on a node otherwise race for one
# (open-mpi/ompi issue 8510); Intel MPI and MPICH ignore these variables.
mpi_session=$(mktemp -d "${TMPDIR:-/tmp}/multijet-mpi.XXXXXX")
export OMPI_MCA_orte_tmpdir_base="$mpi_session" PRTE_MCA_prte_tmpdir_base="$mpi_session"
trap 'rm -rf "$mpi_session"' EXIT
