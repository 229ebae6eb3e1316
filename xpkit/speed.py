"""A job's PyTorch: seed, device, threads, and a quick exit.

The speed settings change no result; each is explained and measured in
``docs/speed.md`` and ``benchmarks/run.py``.
"""

import contextlib
import gc
import logging
import os

import torch

from .gpus import best_device

logger = logging.getLogger(__name__)


def configure_torch(seed: int) -> torch.device:
    """Seeds PyTorch, asks for deterministic kernels, computes with the cores
    the launcher gave the job, and returns its device: the GPU when the job
    was given one (CUDA, else Apple's MPS), else the CPU"""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)  # same seed, same results
    use_job_cores()
    device = best_device()
    logger.info("Computing on %s with %d CPU threads", device, torch.get_num_threads())
    return device


def use_job_cores():
    """Computes with as many threads as the cores the launcher gave this job

    The cores come from ``SLURM_CPUS_PER_TASK`` (SLURM) or ``XPKIT_CORES``
    (the local launcher); with neither, PyTorch's default is kept.
    """
    # Deterministic kernels fill new tensors with NaN, a debugging aid that
    # changes no result and costs 10 to 20% of the time on a CPU: off
    torch.utils.deterministic.fill_uninitialized_memory = False
    cores = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("XPKIT_CORES")
    if cores:
        torch.set_num_threads(int(cores))
        # Inter-op threads run independent operators side by side: a
        # sequential model has none
        with contextlib.suppress(RuntimeError):  # can be set once per process
            torch.set_num_interop_threads(1)


def exit_quickly(xp=None):
    """Lets the process exit a second sooner once its work is done

    At exit, Python's garbage collector goes through the ~300,000 objects of
    PyTorch's modules, while the jobs waiting for this one cannot start.
    ``gc.freeze()`` sets them aside; the system frees the memory anyway.

    :param xp: the experiment, in the experiment's process: nothing is done
        while it serves its web page (``--web``), which goes on running after
        the jobs: frozen objects with PyTorch loaded then made the process
        crash (SIGSEGV) at exit, measured with torch 2.14.1
    """
    if xp is not None and getattr(xp.scheduler, "server", None) is not None:
        return
    gc.freeze()
