"""Checkpoints of a learning job: save, restore, and stop before a time limit.

A checkpoint holds everything needed to go on as if the job had never
stopped: the model, the optimiser, PyTorch's random generator and the
training state (step, last losses, time spent). Every file a job writes goes
through :func:`save_atomically`: a full disk ends the job with one line that
names the file and the free space. See ``docs/troubleshooting.md``.
"""

import errno
import logging
import os
import pickle
import shutil
from pathlib import Path

import torch
from experimaestro import GracefulTimeout

logger = logging.getLogger(__name__)


FULL_DISK_BELOW = 1 << 20
"""Free bytes under which a failed write is put down to a full disk (torch's
writer loses the system's error: it raises a RuntimeError that says nothing)"""


def save_atomically(content, path: Path):
    """Writes ``content`` (a ``str`` as text, anything else with ``torch.save``)
    to a temporary file, then renames it: a crash mid-write leaves the previous
    file whole, never a truncated one. A full disk ends the job (see
    :func:`stop_for_full_disk`)"""
    temporary = path.with_name(f"{path.name}.tmp")
    try:
        if isinstance(content, str):
            temporary.write_text(content)
        else:
            torch.save(content, temporary)
    except (OSError, RuntimeError) as error:
        if not disk_is_full(error, path.parent):
            temporary.unlink(missing_ok=True)
            raise
    else:
        os.replace(temporary, path)  # atomic on POSIX file systems
        return
    # Out of the except block, the error is gone and with it torch's writer,
    # which closes the file: removing it now gives its space back
    temporary.unlink(missing_ok=True)
    stop_for_full_disk(path)


def disk_is_full(error: BaseException, folder: Path) -> bool:
    """Whether a write into ``folder`` failed for want of space: the error (or
    the one it arose from) says so, or almost nothing is left free"""
    cause = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        cause = cause.__context__
    return shutil.disk_usage(folder).free < FULL_DISK_BELOW


def stop_for_full_disk(path: Path):
    """Ends the job with one line in its log naming ``path`` and the free space,
    and no traceback: experimaestro marks a job that exits with status 1 failed"""
    free = shutil.disk_usage(path.parent).free
    logger.error(
        "No space left to write %s (%s free on its disk): free some space, then"
        " run the experiment again (a job goes on from its last checkpoint)",
        path,
        in_words(free),
    )
    raise SystemExit(1)


def in_words(size: float) -> str:
    """A number of bytes, e.g. ``"12.0 KiB"``"""
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    power = 0
    while size >= 1024 and power + 1 < len(units):
        size, power = size / 1024, power + 1
    return f"{size:.0f} bytes" if power == 0 else f"{size:.1f} {units[power]}"


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


UNREADABLE = (
    RuntimeError,  # torch: not a zip file, truncated, tensors that do not fit
    EOFError,
    pickle.UnpicklingError,  # also: code in the file (weights_only refuses it)
    KeyError,
    IndexError,
    TypeError,
    ValueError,
)
"""What loading a damaged checkpoint raises"""


def restore_checkpoint(path: Path, model, optimizer) -> dict:
    """Restores the checkpoint at ``path`` if there is one, and returns the
    training state (``{"step": 0, "train_seconds": 0.0}`` for a new job)

    A checkpoint that cannot be read (damaged, or not what
    :func:`save_checkpoint` writes) is set aside (renamed, see
    :func:`set_aside`) with one line in the log, and the job starts again
    from the beginning: the same seed gives the same results.
    """
    new = {"step": 0, "train_seconds": 0.0}
    if not path.is_file():
        return new
    try:
        # map_location: a checkpoint saved on a GPU loads anywhere;
        # weights_only: the file holds tensors and numbers, never code to run
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        torch.set_rng_state(checkpoint["torch_rng"])
        state = checkpoint["state"]
    except UNREADABLE as error:
        # Its first sentence: torch's messages go on with advice for developers
        reason = (str(error).strip().splitlines() or [""])[0].split(". ")[0]
        logger.warning(
            "The checkpoint %s cannot be read (%s: %s): set aside as %s, the job"
            " starts again from its beginning",
            path,
            type(error).__name__,
            reason[:200],
            set_aside(path).name,
        )
        return new
    logger.info("Resuming from the checkpoint at step %d", checkpoint["step"])
    return state


def set_aside(path: Path) -> Path:
    """Renames ``path`` to ``<name>.damaged`` (``.damaged-2``... if taken)"""
    target, number = path.with_name(f"{path.name}.damaged"), 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.damaged-{number}")
    os.replace(path, target)
    return target


def stop_if_out_of_time(task, margin: float):
    """Raises GracefulTimeout when less than ``margin`` seconds are left before
    the cluster's time limit: experimaestro then submits the job again, and it
    resumes from its last checkpoint

    :param task: the running ``ResumableTask``
    """
    remaining = task.remaining_time()
    if remaining is not None and remaining < margin:
        raise GracefulTimeout(f"only {remaining:.0f} s left: stopping here")
