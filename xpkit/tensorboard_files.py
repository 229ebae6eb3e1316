"""The learning jobs' TensorBoard folders: their scalars read back, and a folder
of links to them for ``tensorboard --logdir``."""

import logging
import os
from pathlib import Path

import pandas as pd

from .results_table import labels


def read_scalars(folder: Path) -> pd.DataFrame:
    """The scalars logged in the TensorBoard event files of a folder

    :param folder: a learning job's TensorBoard folder (its ``tensorboard_path``)
    :return: columns ``scalar`` (e.g. ``validation/accuracy``), ``step``
        (int) and ``value`` (float), sorted by scalar and step; no rows when
        the folder does not exist or holds nothing yet
    """
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    rows = []
    if Path(folder).is_dir():
        # size_guidance 0: keep every point (the default samples 10,000)
        accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        logger = logging.getLogger("tensorboard")
        level = logger.level
        logger.setLevel(logging.WARNING)  # not a line per file read
        try:
            accumulator.Reload()
        finally:
            logger.setLevel(level)
        for scalar in accumulator.Tags()["scalars"]:
            for event in accumulator.Scalars(scalar):
                rows.append((scalar, event.step, event.value))
    curves = pd.DataFrame(rows, columns=["scalar", "step", "value"])
    return curves.sort_values(["scalar", "step"], kind="stable").reset_index(drop=True)


def learning_curves(table: pd.DataFrame) -> pd.DataFrame:
    """The TensorBoard scalars of every learning job of a table made by
    :func:`experiment_table`

    :return: columns ``point`` (the label of the grid point), ``scalar``,
        ``step`` and ``value`` (see :func:`read_scalars`)
    """
    frames = [
        read_scalars(Path(folder)).assign(point=label)
        for label, folder in table.attrs.get("tensorboard", {}).items()
    ]
    frames = [frame for frame in frames if not frame.empty]  # (jobs not started)
    if not frames:
        return pd.DataFrame(columns=["point", "scalar", "step", "value"])
    curves = pd.concat(frames, ignore_index=True)
    return curves[["point", "scalar", "step", "value"]]


def link_tensorboard(table: pd.DataFrame, folder: Path) -> list[Path]:
    """Makes ``folder`` hold one symbolic link per learning job, named by its
    tags (see :func:`point_label`), to the job's TensorBoard folder, so that
    ``tensorboard --logdir FOLDER`` shows every run of the grid. Links are
    relative (they survive moving the workspace with the output folder in
    it); the links already in ``folder`` are replaced, anything else is left.
    A job that has not started yet gets a link that works once it starts; a
    job that ended without logging anything (failed at once) gets none.

    :return: the links made
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_symlink():
            entry.unlink()
    states = dict(zip(labels(table), table.learn_state))
    links = []
    for label, target in table.attrs.get("tensorboard", {}).items():
        state = states.get(label, "")
        logged = any(Path(target).glob("events.out.tfevents.*"))
        if not logged and (state == "DONE" or state.startswith("FAIL")):
            # The job is over and logged nothing (the service may make the folder)
            continue
        link = folder / label
        link.symlink_to(os.path.relpath(target, folder), target_is_directory=True)
        links.append(link)
    return links
