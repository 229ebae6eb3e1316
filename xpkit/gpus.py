"""GPUs of the local launcher: jobs side by side each get GPUs of their own.

Without this, every local job sees every GPU and computes on ``cuda:0``. Each
job that asks for ``n`` GPUs (``cuda(mem=4G)*n``) is given the next ``n`` of
the machine's, in turn, through ``CUDA_VISIBLE_DEVICES`` (so that it sees
them as ``cuda:0``...), and waits for a token of each: a GPU runs one job at a
time. See ``docs/launchers.md``.
"""

import itertools
import os


def machine_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when it is set,
    else every GPU PyTorch sees (none when PyTorch is not installed)"""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu.strip() for gpu in visible.split(",") if gpu.strip()]
    try:
        import torch
    except ImportError:
        return []
    return [str(index) for index in range(torch.cuda.device_count())]


def best_device():
    """The device a job computes on: its GPU (CUDA, else Apple's MPS), else the CPU"""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class GpuAllocator:
    """A launcher listener that gives each submitted job ``per_job`` GPUs,
    taking them in turn, and makes it wait for a token of each"""

    def __init__(self, connector, gpus: list[str], per_job: int):
        if not 1 <= per_job <= len(gpus):
            raise ValueError(f"{per_job} GPUs per job, but {len(gpus)} on this machine")
        self.gpus, self.per_job = gpus, per_job
        self.tokens = {
            gpu: connector.createtoken(f"xpkit-gpu-{gpu}", 1) for gpu in gpus
        }
        self.turn = itertools.cycle(range(0, len(gpus) - per_job + 1, per_job))

    def __call__(self, job):
        first = next(self.turn)
        given = self.gpus[first : first + self.per_job]
        job.environ["CUDA_VISIBLE_DEVICES"] = ",".join(given)
        for gpu in given:
            job.dependencies.add(self.tokens[gpu].dependency(1))
