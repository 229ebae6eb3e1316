"""A minimal launchers.py: SLURM where ``sbatch`` is installed, else this machine"""

import math
import shutil

from experimaestro.connectors.local import LocalConnector
from experimaestro.launchers.direct import DirectLauncher
from experimaestro.launchers.slurm import SlurmLauncher, SlurmOptions


def find_launcher(requirement, tags=()):
    """Called by experimaestro with a requirement, e.g. ``duration=1h & cpu(cores=4)``"""
    if hasattr(requirement, "requirements"):  # A | B: the first alternative
        requirement = requirement.requirements[0]
    if shutil.which("sbatch") is None:
        return DirectLauncher(LocalConnector.instance())  # no SLURM: run here
    options = SlurmOptions(cpus_per_task=str(max(requirement.cpu.cores, 1)))
    if requirement.duration > 0:  # seconds; SLURM counts minutes
        options.time = str(math.ceil(requirement.duration / 60))
    if requirement.cpu.memory > 0:  # bytes
        options.mem = f"{math.ceil(requirement.cpu.memory / 2**20)}M"
    if requirement.accelerators:  # GPUs: cuda(mem=4G)*2 asks for two
        options.gpus_per_node = len(requirement.accelerators)
    # Partition, account, QOS: sbatch reads them from SBATCH_* variables
    return SlurmLauncher(options=options)
