"""Checkpoints of a learning job: save, restore, and stop before a time limit.

A checkpoint holds everything needed to go on as if the job had never
stopped: the model, the optimiser, PyTorch's random generator and the
training state (step, last losses, time spent). See ``docs/troubleshooting.md``.
"""

import logging
import os
from pathlib import Path

import torch
from experimaestro import GracefulTimeout

logger = logging.getLogger(__name__)


def save_atomically(content, path: Path):
    """``torch.save`` to a temporary file, then renamed: a crash mid-write
    leaves the previous file whole, never a truncated one"""
    temporary = path.with_name(f"{path.name}.tmp")
    torch.save(content, temporary)
    os.replace(temporary, path)  # atomic on POSIX file systems


def save_checkpoint(path: Path, model, optimizer, state: dict):
    """Saves the model, the optimiser, the random generator and ``state``"""
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "step": state["step"],
        "state": state,
    }
    save_atomically(checkpoint, path)


def restore_checkpoint(path: Path, model, optimizer) -> dict:
    """Restores the checkpoint at ``path`` if there is one, and returns the
    training state (``{"step": 0, "train_seconds": 0.0}`` for a new job)"""
    if not path.is_file():
        return {"step": 0, "train_seconds": 0.0}
    # map_location: a checkpoint saved on a GPU loads anywhere;
    # weights_only: the file holds tensors and numbers, never code to run
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["torch_rng"])
    logger.info("Resuming from the checkpoint at step %d", checkpoint["step"])
    return checkpoint["state"]


def stop_if_out_of_time(task, margin: float):
    """Raises GracefulTimeout when less than ``margin`` seconds are left before
    the cluster's time limit: experimaestro then submits the job again, and it
    resumes from its last checkpoint

    :param task: the running ``ResumableTask``
    """
    remaining = task.remaining_time()
    if remaining is not None and remaining < margin:
        raise GracefulTimeout(f"only {remaining:.0f} s left: stopping here")
