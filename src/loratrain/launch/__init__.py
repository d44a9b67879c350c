"""From a validated config to a running training: prepare, preflight, GPUs, runner, progress, record, slurm."""
