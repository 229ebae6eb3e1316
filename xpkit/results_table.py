"""The results table of a run: a row per grid point, with its tags, job
states, metrics and job folders; its text form and its CSV and Markdown files."""

import math
import os
from pathlib import Path

import pandas as pd
from experimaestro.scheduler.workspace_state_provider import WorkspaceStateProvider

from .run_jobs import existing_run, grid_points, point_label, read_json, state_name

METRICS = (
    "test_accuracy",
    "test_loss",
    "validation_accuracy",
    "validation_loss",
    "train_seconds",
)
"""Numeric columns of the table: accuracies are fractions in [0, 1], losses
as the tasks write them (e.g. mean cross-entropy per example, in nats),
train_seconds seconds of training"""

STATES = ("learn_state", "evaluate_state")
FOLDERS = ("learn_folder", "evaluate_folder")


def point_row(point: dict, tag_names: list[str]) -> dict:
    """The row of a grid point (see :func:`experiment_table` for the columns):
    metrics are read from the files of its jobs that are DONE, else NaN"""
    learn, learn_config = point.get("learn", (None, None))
    evaluate, evaluate_config = point.get("evaluate", (None, None))
    row = {name: point["tags"].get(name) for name in tag_names}
    row["learn_state"] = state_name(learn)
    row["evaluate_state"] = state_name(evaluate)
    if row["learn_state"].startswith("FAIL") and row["evaluate_state"] == (
        "UNSCHEDULED"
    ):
        # What experimaestro says while the run goes on; once it is over,
        # it records an evaluating job that could not start as unscheduled
        row["evaluate_state"] = "FAIL (dependency)"
    summary = (
        read_json(learn_config.summary_path)
        if learn_config is not None and row["learn_state"] == "DONE"
        else {}
    )
    results = (
        read_json(evaluate_config.results_path)
        if evaluate_config is not None and row["evaluate_state"] == "DONE"
        else {}
    )
    row["test_accuracy"] = results.get("accuracy", math.nan)
    row["test_loss"] = results.get("loss", math.nan)
    row["validation_accuracy"] = summary.get("validation_accuracy", math.nan)
    row["validation_loss"] = summary.get("validation_loss", math.nan)
    row["train_seconds"] = summary.get("train_seconds", math.nan)
    row["learn_folder"] = str(learn.path) if learn is not None else ""
    row["evaluate_folder"] = str(evaluate.path) if evaluate is not None else ""
    return row


def state_provider(workspace: Path) -> WorkspaceStateProvider:
    """experimaestro's reader of the workspace, as ``experimaestro jobs list``
    uses it: made once per process, it first recovers from crashes (e.g.
    marks as failed a killed job, which could not say so itself)"""
    provider = WorkspaceStateProvider.get_instance(
        Path(workspace).expanduser().resolve()
    )
    provider.invalidate_caches()  # read the runs as they are now, even if read before
    return provider


def experiment_table(
    workspace: Path, experiment_id: str, run_id: str | None = None
) -> pd.DataFrame:
    """One row per grid point of a run of the experiment, best first

    The run is read with experimaestro's state provider (the one ``experimaestro
    jobs list`` uses): the jobs of the run with their state, the tag map of the
    run (``jobs.jsonl``: the tags the experiment set, which configurations
    loaded back do not carry) and the job configurations (``load_xp_info``),
    which say where each job writes its files. Jobs are grouped into grid
    points by their tags: the learning job and the evaluating job of a point
    carry the same tags (see :func:`~xpkit.run_jobs.grid_points`). Works on a
    run still in progress.

    :param workspace: the workspace folder
    :param experiment_id: e.g. ``MY_xp``
    :param run_id: a run folder name (e.g. ``20261130_032212``); None for the
        current run
    :return: a DataFrame, one row per grid point (index 0, 1... best first),
        sorted by decreasing test accuracy (points without one last), with
        columns: the tags (e.g. ``lr``, ``seed``, in the order the
        experiment set them); ``learn_state`` and ``evaluate_state`` (see
        :func:`state_name`); ``test_accuracy`` and ``test_loss`` (the
        ``accuracy`` and ``loss`` of the evaluating job's ``results_path``
        file); ``validation_accuracy``, ``validation_loss`` and
        ``train_seconds`` (from the learning job's ``summary_path`` file);
        ``learn_folder`` and ``evaluate_folder`` (absolute job folders, as
        strings). Metrics are NaN unless their job is DONE (or its file lacks
        them). ``table.attrs`` holds ``workspace``, ``experiment``, ``run``
        (the run read), ``tags`` (the tag names) and ``tensorboard`` (point
        label -> the learning job's ``tensorboard_path``).
    :raises FileNotFoundError: if the workspace, the experiment or the run
        does not exist (the message lists what does)
    :raises ValueError: if two learning (or two evaluating) jobs of the run
        have the same tags, so that the grid points cannot be told apart
    """
    workspace = Path(workspace).expanduser().resolve()
    provider = state_provider(workspace)
    current = provider.get_current_run(experiment_id) if run_id is None else None
    run_id = existing_run(provider, workspace, experiment_id, run_id)
    points, tag_names = grid_points(provider, experiment_id, run_id)

    rows, tensorboard = [], {}
    for point in points:
        rows.append(point_row(point, tag_names))
        _, learn_config = point.get("learn", (None, None))
        if learn_config is not None:
            tensorboard[point_label(point["tags"])] = Path(
                learn_config.tensorboard_path
            )

    columns = [*tag_names, *STATES, *METRICS, *FOLDERS]
    table = best_first(rows, columns, METRICS, "test_accuracy", tag_names)
    table.attrs.update(
        workspace=str(workspace),
        experiment=experiment_id,
        run=run_id,
        tags=tag_names,
        tensorboard={label: str(path) for label, path in tensorboard.items()},
        # The current run, when it had no job and an earlier one is read
        passed_over=current if current not in (None, run_id) else None,
    )
    return table


def best_first(rows, columns, numbers, key: str, tag_names) -> pd.DataFrame:
    """A table of ``rows``, its ``numbers`` columns as floats, sorted by
    decreasing ``key`` (rows without one last), then by the tags"""
    table = pd.DataFrame(rows, columns=columns)
    for name in numbers:
        table[name] = table[name].astype(float)
    return table.sort_values(
        [key, *tag_names],
        ascending=[False] + [True] * len(tag_names),
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)


def tag_columns(table: pd.DataFrame) -> list[str]:
    """The tag columns of a table made by :func:`experiment_table`"""
    if "tags" in table.attrs:
        return list(table.attrs["tags"])
    return list(table.columns[: list(table.columns).index("learn_state")])


def labels(table: pd.DataFrame) -> list[str]:
    """The label (see :func:`point_label`) of each row"""
    names = tag_columns(table)
    # Row by row keeps each column's type: .values makes ints floats (1.0)
    # when a tag is a float (lr)
    rows = table[names].itertuples(index=False, name=None)
    return [point_label(dict(zip(names, values))) for values in rows]


def finished(table: pd.DataFrame) -> pd.Series:
    """For each row, whether both its jobs are DONE (its metrics are there)"""
    return (table.learn_state == "DONE") & (table.evaluate_state == "DONE")


def failed_points(table: pd.DataFrame) -> list[str]:
    """The grid points whose learning or evaluating job failed, in words
    (label, states and the log to read), e.g. ``lr=0.1,...: learn FAIL,
    evaluate FAIL (dependency); log: /ws/jobs/my.tasks.learn/ab12.../learn.err``;
    an empty list when none failed

    experimaestro names a job's log after the last part of its task id, the
    name of the job folder's parent (``jobs/my.tasks.learn/ab12...``).
    """
    failed = []
    for label, row in zip(labels(table), table.itertuples(index=False)):
        states = {"learn": row.learn_state, "evaluate": row.evaluate_state}
        if not any(state.startswith("FAIL") for state in states.values()):
            continue
        # The log to read: the learning job's when it failed (the evaluating
        # job then never ran)
        culprit = "learn" if row.learn_state.startswith("FAIL") else "evaluate"
        folder = getattr(row, f"{culprit}_folder")
        words = ", ".join(f"{kind} {state}" for kind, state in states.items())
        log = Path(folder) / f"{Path(folder).parent.name.rpartition('.')[2]}.err"
        failed.append(f"{label}: {words}; log: {log}")
    return failed


def number_cells(values, digits: int) -> list[str]:
    """Numbers as the printed tables show them: ``digits`` decimals, ``nan``
    when missing"""
    return ["nan" if math.isnan(value) else f"{value:.{digits}f}" for value in values]


def markdown(shown: pd.DataFrame, right: list[str]) -> str:
    """A Markdown table of the cells of ``shown``, the ``right`` columns
    aligned right (numbers, tags), the others left"""
    align = ["right" if name in right else "left" for name in shown.columns]
    return shown.astype(str).to_markdown(
        index=False, disable_numparse=True, colalign=align
    )


def format_table(table: pd.DataFrame) -> str:
    """The table as ``python -m xpkit.analyze`` prints it (one seed): a
    line naming the run, then a Markdown table (metrics rounded: accuracies
    and losses to 4 decimals, seconds to 1; ``nan`` when missing; job folders
    relative to the workspace when it is known)"""
    shown = table.copy()
    for name in METRICS:
        shown[name] = number_cells(table[name], 1 if name == "train_seconds" else 4)
    workspace = table.attrs.get("workspace")
    if workspace:
        for name in FOLDERS:
            shown[name] = [
                os.path.relpath(folder, workspace) if folder else ""
                for folder in table[name]
            ]
    text = markdown(shown, [*METRICS, *tag_columns(table)])
    if "experiment" not in table.attrs:
        return text
    done = sum(finished(table))
    failed = len(failed_points(table))
    title = (
        f"{table.attrs['experiment']}, run {table.attrs['run']}:"
        f" {len(table)} grid points, {done} done, {failed} failed,"
        f" {len(table) - done - failed} unfinished"
        f" (job folders relative to the workspace {workspace})"
    )
    return f"{title}\n\n{text}"


def write_table(
    table: pd.DataFrame, output: Path, text: str | None = None
) -> list[Path]:
    """Writes ``results.csv`` (full precision, absolute folders, NaN as an
    empty cell) and ``results.md`` (``text``, by default the table as
    :func:`format_table` prints it) into ``output`` (made if needed)

    :return: the two paths
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    csv, markdown_file = output / "results.csv", output / "results.md"
    table.to_csv(csv, index=False)
    markdown_file.write_text((format_table(table) if text is None else text) + "\n")
    return [csv, markdown_file]
