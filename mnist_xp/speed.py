"""Speed settings of the jobs: threads, memory layout, a quick exit.

None of them changes a result; each is explained and measured in
``docs/speed.md`` and ``benchmarks/run.py``.
"""

import contextlib
import gc
import os

import torch


def use_job_cores():
    """Computes with as many threads as the cores the launcher gave this job

    The cores come from ``SLURM_CPUS_PER_TASK`` (SLURM) or ``MNIST_XP_CORES``
    (the local launcher); with neither, PyTorch's default is kept.
    """
    # Deterministic kernels fill new tensors with NaN, a debugging aid that
    # changes no result and costs 10 to 20% of the time on a CPU: off
    torch.utils.deterministic.fill_uninitialized_memory = False
    cores = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("MNIST_XP_CORES")
    if cores:
        torch.set_num_threads(int(cores))
        # A sequential CNN has no independent operators to run side by side
        with contextlib.suppress(RuntimeError):  # can be set once per process
            torch.set_num_interop_threads(1)


def fast_layout(images: torch.Tensor) -> torch.Tensor:
    """Adds the channel axis to (B, 28, 28) images: (B, 1, 28, 28)

    On a CPU the result is a channels-last view of the same memory (one
    channel allows it): the feature maps of the convolutions are then
    channels-last too, which ReLU and max-pooling go through much faster.
    """
    if images.device.type == "cpu":
        return images.unsqueeze(-1).permute(0, 3, 1, 2)
    return images.unsqueeze(1)


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
