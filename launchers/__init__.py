"""Job-script generation for Slurm, PBS Pro and local mpirun sweeps."""
