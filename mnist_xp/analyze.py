"""Results you can look at: one table, two figures and a TensorBoard folder.

    python -m mnist_xp.analyze [--workspace WS] [--experiment ID] [--run RUN]
                               [--output FOLDER] [--no-tensorboard]

reads a run of the experiment, finished or still running, through
experimaestro's loading API (the job configurations, the experiment's tag map
and the job states), and prints one table: a row per grid point with its tags,
the state of its Learn and Evaluate jobs, its validation and test accuracy and
loss, its training time and its job folders, best test accuracy first. Failed
or unfinished points are kept, with their state and NaN metrics.

Options (and defaults):

- ``--workspace``: a workspace folder, or the id of a workspace of
  ``~/.config/experimaestro/settings.yaml`` (default: ``mnist-xp``, the one
  ``python -m mnist_xp.configure`` adds);
- ``--experiment``: the experiment id (default: ``MNIST_train``);
- ``--run``: the run id, a folder name under ``<workspace>/experiments/<id>/``
  (default: the current run, the one ``current`` links to);
- ``--output``: where the files go (default: ``<run folder>/results``, the
  folder experimaestro gives an experiment for its results, ``xp.resultspath``;
  ``<workspace>/experiments/<id>/current/results`` is the latest run's);
- ``--no-tensorboard``: do not make the ``tensorboard`` folder (for an output
  folder that is committed, such as ``docs/figures``).

Files written in the output folder:

- ``results.csv``: the table, full precision, absolute job folders;
- ``results.md``: the table as printed (Markdown);
- ``test_accuracy.png``: test accuracy against each swept parameter, one line
  per combination of the other swept parameters;
- ``curves.png``: validation accuracy and loss over the training steps of every
  Learn job, read from its TensorBoard event files;
- ``tensorboard/``: one link per Learn job, named by its tags (e.g.
  ``n_layers=1,hidden_dim=32,kernel_size=3``), to the job's TensorBoard folder:
  ``tensorboard --logdir <output>/tensorboard`` shows every run of the grid.

The experiment (:func:`mnist_xp.experiment.run`) calls :func:`analyze` when
its jobs are over: the table it prints and the files it writes are the ones
this command gives.
"""

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

import pandas as pd
from experimaestro.scheduler.interfaces import JobFailureStatus
from experimaestro.scheduler.workspace_state_provider import WorkspaceStateProvider
from experimaestro.settings import get_workspace

from .configure import WORKSPACE_ID

DEFAULT_EXPERIMENT = "MNIST_train"
"""The experiment of params.yaml"""

METRICS = (
    "test_accuracy",
    "test_loss",
    "validation_accuracy",
    "validation_loss",
    "train_seconds",
)
"""Numeric columns of the table: accuracies are fractions in [0, 1], losses
mean cross-entropies per image (nats), train_seconds seconds of training"""

STATES = ("learn_state", "evaluate_state")
FOLDERS = ("learn_folder", "evaluate_folder")

TENSORBOARD_FOLDER = "tensorboard"
"""Sub-folder of the output folder holding one link per Learn job"""


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------


def state_name(job) -> str:
    """A job's state in words, as ``experimaestro jobs list`` prints it:
    ``DONE``, ``RUNNING``, ``WAITING``, ``READY``, ``SCHEDULED``,
    ``UNSCHEDULED``..., and ``FAIL`` for a failed job, with the reason when
    there is one other than the job's own error (e.g. ``FAIL (dependency)``
    for an Evaluate whose Learn failed); ``MISSING`` when there is no job"""
    if job is None:
        return "MISSING"
    state = job.state
    if state is None:
        return "UNSCHEDULED"
    if state.is_error():
        reason = getattr(state, "failure_reason", None)
        if reason is None or reason == JobFailureStatus.FAILED:
            return "FAIL"
        return f"FAIL ({reason.name.lower()})"
    return state.name.upper()


def point_label(tags: dict) -> str:
    """``n_layers=1,hidden_dim=32,kernel_size=3``: names a grid point in
    messages, legends and TensorBoard (``/`` is replaced, as it would make a
    sub-folder)"""
    return ",".join(f"{key}={value}" for key, value in tags.items()).replace("/", "_")


def read_json(path: Path | None) -> dict:
    """The content of a JSON file, or ``{}`` when there is no such file"""
    if path is None or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text())


def existing_run(
    provider, workspace: Path, experiment_id: str, run_id: str | None
) -> str:
    """The run to read: ``run_id``, or the current run when it is None

    :raises FileNotFoundError: if the workspace, the experiment or the run
        does not exist (the message lists what does)
    """
    experiments = workspace / "experiments"
    if not experiments.is_dir():
        raise FileNotFoundError(f"{workspace} holds no experiment: not a workspace")
    if run_id is None:
        run_id = provider.get_current_run(experiment_id)
    if run_id and (experiments / experiment_id / run_id).is_dir():
        return run_id
    known = sorted(p.name for p in experiments.iterdir() if p.is_dir())
    if experiment_id not in known:
        raise FileNotFoundError(
            f"No experiment {experiment_id} in {workspace}"
            f" (experiments: {', '.join(known) or 'none'})"
        )
    runs = sorted(
        p.name
        for p in (experiments / experiment_id).iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )
    raise FileNotFoundError(
        f"No run {run_id} of {experiment_id} in {workspace}"
        f" (runs: {', '.join(runs) or 'none'})"
    )


def grid_points(provider, experiment_id: str, run_id: str) -> tuple[list, list]:
    """The jobs of a run grouped into grid points by their tags

    :return: the points, each ``{"tags": {name: value}, "learn": (job,
        configuration), "evaluate": (job, configuration)}`` (a task without a
        job in the run is missing), and the tag names in the order the
        experiment set them
    :raises ValueError: if two Learn (or two Evaluate) jobs have the same tags
    """
    # Imported here: torch takes seconds to load, a wrong id should not wait
    from .learn import Evaluate, Learn

    configs = provider.load_xp_info(experiment_id, run_id).jobs
    tags_map = provider.get_tags_map(experiment_id, run_id)
    points: dict[tuple, dict] = {}
    tag_names: list[str] = []
    kinds = {
        str(Learn.__xpmtype__.identifier): "learn",
        str(Evaluate.__xpmtype__.identifier): "evaluate",
    }
    for job in provider.get_jobs(experiment_id, run_id):
        kind = kinds.get(job.task_id)
        if kind is None:
            continue  # not a task of this experiment
        # None while the experiment has not written it yet (just submitted)
        config = configs.get(job.identifier)
        tags = dict(tags_map.get(job.identifier, {}))
        tag_names += [name for name in tags if name not in tag_names]
        point = points.setdefault(tuple(tags.items()), {"tags": tags})
        if kind in point:
            raise ValueError(
                f"Two {kind} jobs of {experiment_id}/{run_id} have the tags"
                f" {point_label(tags) or '(none)'}: {point[kind][0].path} and"
                f" {job.path}. Tag the parameters that differ between them"
            )
        point[kind] = (job, config)
    return list(points.values()), tag_names


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
        # it records an Evaluate that could not start as unscheduled
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


def experiment_table(
    workspace: Path, experiment_id: str, run_id: str | None = None
) -> pd.DataFrame:
    """One row per grid point of a run of the experiment, best first

    The run is read with experimaestro's state provider (the one ``experimaestro
    jobs list`` uses): the jobs of the run with their state, the tag map of the
    run (``jobs.jsonl``: the tags the experiment set, which configurations
    loaded back do not carry) and the job configurations (``load_xp_info``),
    which say where each job writes its files. Jobs are grouped into grid
    points by their tags: the Learn job and the Evaluate job of a point carry
    the same tags, those of their CNN. Works on a run still in progress.

    :param workspace: the workspace folder
    :param experiment_id: e.g. ``MNIST_train``
    :param run_id: a run folder name (e.g. ``20261130_032212``); None for the
        current run
    :return: a DataFrame, one row per grid point (index 0, 1... best first),
        sorted by decreasing test accuracy (points without one last), with
        columns: the tags (e.g. ``n_layers``, ``hidden_dim``, ``kernel_size``,
        in the order the experiment set them); ``learn_state`` and
        ``evaluate_state`` (see :func:`state_name`); ``test_accuracy``
        (fraction of the test images classified right, in [0, 1]) and
        ``test_loss`` (mean cross-entropy per image, in nats) from the
        Evaluate job's ``results.json``; ``validation_accuracy`` and
        ``validation_loss`` (same units, on the held-out training images at
        the end of training) and ``train_seconds`` (seconds spent training)
        from the Learn job's ``learn.json``; ``learn_folder`` and
        ``evaluate_folder`` (absolute job folders, as strings). Metrics are
        NaN unless their job is DONE. ``table.attrs`` holds ``workspace``,
        ``experiment``, ``run`` (the run read), ``tags`` (the tag names) and
        ``tensorboard`` (point label -> the Learn job's TensorBoard folder).
    :raises FileNotFoundError: if the workspace, the experiment or the run
        does not exist (the message lists what does)
    :raises ValueError: if two Learn (or two Evaluate) jobs of the run have
        the same tags, so that the grid points cannot be told apart
    """
    workspace = Path(workspace).expanduser().resolve()
    # As `experimaestro jobs list` does: made once per process, the provider
    # first recovers from crashes (e.g. marks as failed a killed job, which
    # could not say so itself)
    provider = WorkspaceStateProvider.get_instance(workspace)
    provider.invalidate_caches()  # read the run as it is now, even if read before
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
    table = pd.DataFrame(rows, columns=columns)
    for name in METRICS:
        table[name] = table[name].astype(float)
    table = table.sort_values(
        ["test_accuracy", *tag_names],
        ascending=[False] + [True] * len(tag_names),
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    table.attrs.update(
        workspace=str(workspace),
        experiment=experiment_id,
        run=run_id,
        tags=tag_names,
        tensorboard={label: str(path) for label, path in tensorboard.items()},
    )
    return table


def tag_columns(table: pd.DataFrame) -> list[str]:
    """The tag columns of a table made by :func:`experiment_table`"""
    if "tags" in table.attrs:
        return list(table.attrs["tags"])
    return list(table.columns[: list(table.columns).index("learn_state")])


def labels(table: pd.DataFrame) -> list[str]:
    """The label (see :func:`point_label`) of each row"""
    names = tag_columns(table)
    return [point_label(dict(zip(names, values))) for values in table[names].values]


def failed_points(table: pd.DataFrame) -> list[str]:
    """The grid points whose Learn or Evaluate job failed, in words (label,
    states and the log to read), e.g. ``n_layers=2,...: learn FAIL, evaluate
    FAIL (dependency); log: /ws/jobs/mnist_xp.learn.learn/ab12.../learn.err``;
    an empty list when none failed"""
    failed = []
    for label, row in zip(labels(table), table.itertuples(index=False)):
        states = {"learn": row.learn_state, "evaluate": row.evaluate_state}
        if not any(state.startswith("FAIL") for state in states.values()):
            continue
        # The log to read: Learn's when it failed (Evaluate then never ran)
        culprit = "learn" if row.learn_state.startswith("FAIL") else "evaluate"
        folder = getattr(row, f"{culprit}_folder")
        words = ", ".join(f"{kind} {state}" for kind, state in states.items())
        failed.append(f"{label}: {words}; log: {folder}/{culprit}.err")
    return failed


def format_table(table: pd.DataFrame) -> str:
    """The table as :func:`print_table` prints it: a line naming the run, then
    a Markdown table (metrics rounded: accuracies and losses to 4 decimals,
    seconds to 1; ``nan`` when missing; job folders relative to the
    workspace when it is known)"""
    shown = table.copy()
    for name in METRICS:
        digits = 1 if name == "train_seconds" else 4
        shown[name] = [
            "nan" if math.isnan(value) else f"{value:.{digits}f}"
            for value in table[name]
        ]
    workspace = table.attrs.get("workspace")
    if workspace:
        for name in FOLDERS:
            shown[name] = [
                os.path.relpath(folder, workspace) if folder else ""
                for folder in table[name]
            ]
    names = tag_columns(table)
    align = [
        "right" if name in METRICS or name in names else "left"
        for name in shown.columns
    ]
    markdown = shown.astype(str).to_markdown(
        index=False, disable_numparse=True, colalign=align
    )
    if "experiment" not in table.attrs:
        return markdown
    done = sum((table.learn_state == "DONE") & (table.evaluate_state == "DONE"))
    failed = len(failed_points(table))
    title = (
        f"{table.attrs['experiment']}, run {table.attrs['run']}:"
        f" {len(table)} grid points, {done} done, {failed} failed,"
        f" {len(table) - done - failed} unfinished"
        f" (job folders relative to the workspace {workspace})"
    )
    return f"{title}\n\n{markdown}"


def print_table(table: pd.DataFrame):
    """Prints a table made by :func:`experiment_table` (see
    :func:`format_table`) on the standard output"""
    print(format_table(table), flush=True)


# ---------------------------------------------------------------------------
# Files: CSV, Markdown, figures, TensorBoard links
# ---------------------------------------------------------------------------


def write_table(table: pd.DataFrame, output: Path) -> list[Path]:
    """Writes ``results.csv`` (full precision, absolute folders, NaN as an
    empty cell) and ``results.md`` (as printed) into ``output`` (made if
    needed)

    :return: the two paths
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    csv, markdown = output / "results.csv", output / "results.md"
    table.to_csv(csv, index=False)
    markdown.write_text(format_table(table) + "\n")
    return [csv, markdown]


def read_scalars(folder: Path) -> pd.DataFrame:
    """The scalars logged in the TensorBoard event files of a folder

    :param folder: a Learn job's TensorBoard folder (``runs/``)
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
    """The TensorBoard scalars of every Learn job of a table made by
    :func:`experiment_table`

    :return: columns ``point`` (the label of the grid point), ``scalar``,
        ``step`` and ``value`` (see :func:`read_scalars`)
    """
    frames = [
        read_scalars(Path(folder)).assign(point=label)
        for label, folder in table.attrs.get("tensorboard", {}).items()
    ]
    if not frames:
        return pd.DataFrame(columns=["point", "scalar", "step", "value"])
    curves = pd.concat(frames, ignore_index=True)
    return curves[["point", "scalar", "step", "value"]]


def new_figure(columns: int):
    """A matplotlib figure of ``columns`` side-by-side panels, drawn with the
    Agg backend without going through pyplot (no display, no global state)"""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5 * columns, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, columns, squeeze=False)[0]


def accuracy_panels(table: pd.DataFrame) -> list[tuple]:
    """What :func:`plot_test_accuracy` draws: one panel per swept parameter
    (a tag with more than one value), or a single panel of the grid points
    when none is swept

    :return: ``(x label, tick labels, lines, legend title)`` per panel, where
        ``lines`` is a list of ``(label, x positions, test accuracies)``
    """
    names = tag_columns(table)
    swept = [name for name in names if table[name].nunique() > 1]
    if not swept:
        points = labels(table)
        return [
            (
                "grid point",
                points,
                [("", list(range(len(points))), list(table.test_accuracy))],
                "",
            )
        ]
    panels = []
    for parameter in swept:
        values = sorted(table[parameter].unique())
        position = {value: i for i, value in enumerate(values)}
        others = [name for name in swept if name != parameter]
        groups = table.groupby(others, sort=True) if others else [((), table)]
        lines = []
        for key, group in groups:
            key = key if isinstance(key, tuple) else (key,)
            group = group.sort_values(parameter)
            lines.append(
                (
                    point_label(dict(zip(others, key))),
                    [position[value] for value in group[parameter]],
                    list(group.test_accuracy),
                )
            )
        panels.append((parameter, [str(v) for v in values], lines, ", ".join(others)))
    return panels


def plot_test_accuracy(table: pd.DataFrame, path: Path) -> Path:
    """Writes a PNG of the test accuracy against each swept parameter: one
    panel per parameter, its values evenly spaced on the x axis, one line
    per combination of the other swept parameters (see
    :func:`accuracy_panels`). Points without a test accuracy (failed,
    unfinished) are marked with a red cross on the x axis.

    :return: ``path``
    """
    panels = accuracy_panels(table)
    figure, axes = new_figure(len(panels))
    for axis, (parameter, ticks, lines, legend) in zip(axes, panels):
        for label, x, accuracy in lines:
            axis.plot(x, accuracy, marker="o", label=label or None)
            missing = [p for p, a in zip(x, accuracy) if math.isnan(a)]
            axis.plot(
                missing,
                [0.0] * len(missing),
                "x",
                color="red",
                markersize=10,
                clip_on=False,
                transform=axis.get_xaxis_transform(),
            )
        axis.set_xticks(range(len(ticks)), ticks)
        axis.set_xlim(-0.5, len(ticks) - 0.5)
        axis.set_xlabel(parameter)
        axis.set_ylabel("test accuracy")
        axis.set_title(f"Test accuracy against {parameter}")
        axis.grid(alpha=0.3)
        if legend:
            axis.legend(fontsize="small", title=legend)
    if table.test_accuracy.isna().any():
        figure.suptitle(
            "red ×: no test accuracy (failed or unfinished)", fontsize="small"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def plot_curves(table: pd.DataFrame, path: Path) -> Path:
    """Writes a PNG of the validation accuracy (left) and loss (right) against
    the training step, one line per Learn job, read from its TensorBoard
    event files (see :func:`learning_curves`)

    :return: ``path``
    """
    curves = learning_curves(table)
    figure, axes = new_figure(2)
    for axis, scalar, name in zip(
        axes,
        ("validation/accuracy", "validation/loss"),
        ("validation accuracy", "validation loss (nats per image)"),
    ):
        points = curves[curves.scalar == scalar]
        for label in labels(table):
            curve = points[points.point == label]
            if len(curve):
                axis.plot(curve.step, curve.value, marker=".", label=label)
        if points.empty:
            axis.text(
                0.5, 0.5, "no points logged yet", ha="center", transform=axis.transAxes
            )
        else:
            axis.legend(fontsize="small")
        axis.set_xlabel("training step")
        axis.set_ylabel(name)
        axis.set_title(name.split(" (")[0].capitalize())
        axis.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def link_tensorboard(table: pd.DataFrame, folder: Path) -> list[Path]:
    """Makes ``folder`` hold one symbolic link per Learn job, named by its
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
        if not Path(target).is_dir() and (state == "DONE" or state.startswith("FAIL")):
            continue  # the job is over and logged nothing
        link = folder / label
        link.symlink_to(os.path.relpath(target, folder), target_is_directory=True)
        links.append(link)
    return links


def default_output(table: pd.DataFrame) -> Path:
    """``<workspace>/experiments/<id>/<run>/results``: experimaestro's results
    folder of the run (``xp.resultspath``)"""
    attrs = table.attrs
    return (
        Path(attrs["workspace"]) / "experiments" / attrs["experiment"] / attrs["run"]
    ) / "results"


def analyze(
    workspace: Path,
    experiment_id: str,
    run_id: str | None = None,
    output: Path | None = None,
    tensorboard: bool = True,
    figures: bool = True,
) -> pd.DataFrame:
    """Prints the table of a run (:func:`experiment_table`,
    :func:`print_table`) and writes the CSV, the Markdown, the two figures
    (unless ``figures`` is False: matplotlib takes 2 to 3 s) and the
    TensorBoard links (unless ``tensorboard`` is False) into ``output``
    (default: :func:`default_output`), then prints their paths

    :return: the table
    :raises FileNotFoundError, ValueError: see :func:`experiment_table`
    """
    table = experiment_table(workspace, experiment_id, run_id)
    print_table(table)
    output = Path(output) if output is not None else default_output(table)
    written = write_table(table, output)
    if figures:
        written.append(plot_test_accuracy(table, output / "test_accuracy.png"))
        written.append(plot_curves(table, output / "curves.png"))
    lines = [f"Written: {', '.join(str(path) for path in written)}"]
    if tensorboard:
        links = link_tensorboard(table, output / TENSORBOARD_FOLDER)
        lines.append(
            f"TensorBoard ({len(links)} run{'' if len(links) == 1 else 's'}):"
            f" tensorboard --logdir {output / TENSORBOARD_FOLDER}"
        )
    print("\n" + "\n".join(lines), flush=True)
    return table


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def workspace_folder(value: str | None) -> Path:
    """The workspace folder given on the command line: an existing folder, or
    the id of a workspace of experimaestro's settings (``mnist-xp`` when
    nothing is given)

    :raises SystemExit: with a message, when neither
    """
    if value and Path(value).expanduser().is_dir():
        return Path(value).expanduser()
    settings = get_workspace(value or WORKSPACE_ID)
    if settings is None:
        raise SystemExit(
            f"No workspace folder or workspace id {value or WORKSPACE_ID!r}"
            " in ~/.config/experimaestro/settings.yaml: give --workspace FOLDER,"
            " or run `python -m mnist_xp.configure` first"
        )
    return Path(settings.path).expanduser()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mnist_xp.analyze",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--workspace",
        help="workspace folder or id in experimaestro's settings"
        f" (default: {WORKSPACE_ID})",
    )
    parser.add_argument(
        "--experiment",
        default=DEFAULT_EXPERIMENT,
        help="experiment id (default: %(default)s)",
    )
    parser.add_argument("--run", help="run id (default: the current run)")
    parser.add_argument(
        "--output",
        type=Path,
        help="folder for the files (default: <run folder>/results)",
    )
    parser.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="do not make the tensorboard folder of links",
    )
    args = parser.parse_args(argv)
    try:
        analyze(
            workspace_folder(args.workspace),
            args.experiment,
            args.run,
            output=args.output,
            tensorboard=not args.no_tensorboard,
        )
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"Analysis stopped: {error}")


if __name__ == "__main__":
    main()
