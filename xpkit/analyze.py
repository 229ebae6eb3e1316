"""Results you can look at: one table, two figures and a TensorBoard folder.

    python -m xpkit.analyze [--workspace WS] [--experiment ID] [--run RUN]
                            [--output FOLDER] [--no-tensorboard]

reads a run of the experiment, finished or still running, through
experimaestro's loading API (the job configurations, the experiment's tag map
and the job states), and prints one table: a row per grid point with its tags,
the state of its learning and evaluating jobs, its validation and test
accuracy and loss, its training time and its job folders, best test accuracy
first. Failed or unfinished points are kept, with their state and NaN
metrics. When the ``seed`` tag takes several values, it prints instead one
row per grid point of the other tags: the seeds done (``n_seeds``), the mean
and std of each metric over them, and the seeds that failed or are unfinished
(:mod:`xpkit.seeds`).

Options (and defaults):

- ``--workspace``: a workspace folder, or the id of a workspace of
  ``~/.config/experimaestro/settings.yaml`` (default: the workspace whose
  triggers match ``--experiment``, as ``python -m xpkit.configure
  --experiments PATTERN`` sets them; else experimaestro's default one, the
  first local workspace of the file);
- ``--experiment``: the experiment id (default: the workspace's experiment
  that ran last, the one whose current run folder changed last);
- ``--run``: the run id, a folder name under ``<workspace>/experiments/<id>/``
  (default: the current run, the one ``current`` links to, or if it has no
  job, as after a run refused by the checks, the latest run that has jobs);
- ``--output``: where the files go (default: ``<run folder>/results``, the
  folder experimaestro gives an experiment for its results, ``xp.resultspath``;
  ``<workspace>/experiments/<id>/current/results`` is the latest run's);
- ``--no-tensorboard``: do not make the ``tensorboard`` folder (for an output
  folder kept in the repository).

Files written in the output folder:

- ``results.csv``: the table, one row per job pair (also with several
  seeds), full precision, absolute job folders;
- ``results.md``: the table as printed (Markdown);
- ``results_by_point.csv``: with several seeds only, the printed table of
  means and stds, full precision;
- ``test_accuracy.png``: test accuracy against each swept parameter, one line
  per combination of the other swept parameters (with several seeds: the
  mean, with ± std error bars);
- ``curves.png``: validation accuracy and loss over the training steps of every
  learning job, read from its TensorBoard event files;
- ``tensorboard/``: one link per learning job, named by its tags (e.g.
  ``lr=0.001,seed=0``), to the job's TensorBoard folder:
  ``tensorboard --logdir <output>/tensorboard`` shows every run of the grid.

The experiment calls :func:`show_results`, which calls :func:`analyze`, when
its jobs are over: the table it prints and the files it writes are the ones
this command gives. The parts live in :mod:`xpkit.run_jobs` (the jobs of
the run), :mod:`xpkit.results_table` (the table and its files),
:mod:`xpkit.seeds` (the table over seeds), :mod:`xpkit.figures` and
:mod:`xpkit.tensorboard_files`.
"""

import argparse
import errno
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
from experimaestro import RunMode
from experimaestro.scheduler.experiment import FailedExperiment
from experimaestro.settings import get_settings, get_workspace

from .figures import plot_curves, plot_test_accuracy
from .results_table import (
    experiment_table,
    failed_points,
    format_table,
    state_provider,
    write_table,
)
from .run_jobs import runs_with_jobs
from .seeds import by_point, format_by_point, several_seeds, write_by_point
from .speed import exit_quickly
from .tensorboard_files import link_tensorboard

# failed_points is re-exported: the list of failed points, from the table
__all__ = ["analyze", "failed_points", "main"]


class NotWritten(ValueError):
    """The table was printed, but its files could not be written (a full disk)"""


TENSORBOARD_FOLDER = "tensorboard"
"""Sub-folder of the output folder holding one link per learning job"""


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
    :func:`format_table`; with several seeds, :func:`by_point`,
    :func:`format_by_point`) and writes the CSV files, the Markdown, the two
    figures (unless ``figures`` is False: matplotlib takes 2 to 3 s) and the
    TensorBoard links (unless ``tensorboard`` is False) into ``output``
    (default: :func:`default_output`), then prints their paths

    :return: the per-job table (one row per pair of learning and evaluating
        jobs)
    :raises FileNotFoundError, ValueError: see :func:`experiment_table`
    :raises NotWritten: when the disk of ``output`` is full
    """
    table = experiment_table(workspace, experiment_id, run_id)
    if passed_over := table.attrs["passed_over"]:
        print(
            f"The latest run of {experiment_id}, {passed_over}, has no job (it"
            f" stopped before submitting any): here is run {table.attrs['run']}\n",
            flush=True,
        )
    points = by_point(table) if several_seeds(table) else None
    text = format_table(table) if points is None else format_by_point(points)
    print(text, flush=True)
    output = Path(output) if output is not None else default_output(table)
    try:
        lines = write_outputs(table, points, text, output, figures, tensorboard)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free = shutil.disk_usage(output).free // 1024
    else:
        print("\n" + "\n".join(lines), flush=True)
        return table
    # Raised out of the except block: one line, without the OSError's traceback
    raise NotWritten(
        f"No space left to write the results into {output} ({free} KiB free on"
        " its disk): free some space, then run `python -m xpkit.analyze`"
    )


def write_outputs(table, points, text, output, figures, tensorboard) -> list[str]:
    """Writes the files of :func:`analyze` into ``output``; the lines that
    name them"""
    written = write_table(table, output, text)
    if points is not None:
        written.append(write_by_point(points, output))
    if figures:
        written.append(plot_test_accuracy(table, output / "test_accuracy.png"))
        written.append(plot_curves(table, output / "curves.png"))
    lines = [f"Written: {', '.join(str(path) for path in written)}"]
    if tensorboard and (links := link_tensorboard(table, output / TENSORBOARD_FOLDER)):
        # (no line when no job logged anything: every one failed at once)
        lines.append(
            f"TensorBoard ({len(links)} run{'' if len(links) == 1 else 's'}):"
            f" tensorboard --logdir {output / TENSORBOARD_FOLDER}"
        )
    return lines


def load_results(
    experiment_id: str | None = None,
    run_id: str | None = None,
    workspace: str | Path | None = None,
) -> pd.DataFrame:
    """The per-job table of a run, as :func:`experiment_table` makes it (one
    row per grid point and seed, best test accuracy first), for a notebook

    :param experiment_id: e.g. ``MY_xp`` (default: the experiment that ran last)
    :param run_id: a run of it (default: the latest run that has jobs)
    :param workspace: a workspace folder or id (default: the one
        experimaestro gives the experiment)
    """
    folder = workspace_folder(str(workspace) if workspace else None, experiment_id)
    experiment_id = experiment_id or latest_experiment(folder)
    return experiment_table(folder, experiment_id, run_id)


def run_ids(experiment_id: str, workspace: str | Path | None = None) -> list[str]:
    """The runs of an experiment, oldest first (e.g. to compare two of them
    with :func:`load_results`)"""
    folder = workspace_folder(str(workspace) if workspace else None, experiment_id)
    return runs_with_jobs(state_provider(folder), experiment_id)


def show_results(xp, figures: bool = True):
    """At the end of an experiment's ``run``: prints the table of
    :func:`analyze` and writes its files in the run's results folder

    :param xp: the experiment (``helper.xp``)
    :raises FailedExperiment: if a grid point failed, or a results file is
        damaged (``run-experiment`` then exits with status 1)
    """
    if xp.run_mode != RunMode.NORMAL:
        return  # a dry run has no results
    try:
        table = analyze(
            xp.workspace.path,
            xp.name,
            xp.run_id,
            output=xp.resultspath,
            figures=figures,
        )
    except NotWritten as error:  # the table is printed, not its files
        raise FailedExperiment(str(error)) from None
    except ValueError as error:  # a damaged results file, named
        raise FailedExperiment(f"No results table: {error}") from None
    exit_quickly(xp)  # skip Python's slow final clean-up (speed.py)
    if failed := failed_points(table):
        raise FailedExperiment(
            f"{len(failed)} of {len(table)} grid points failed:\n" + "\n".join(failed)
        )


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def workspace_folder(value: str | None, experiment: str | None) -> Path:
    """The workspace folder given on the command line: an existing folder, or
    the id of a workspace of experimaestro's settings; when nothing is given,
    the workspace experimaestro gives the experiment (by its triggers), else
    its default one (the first)

    :raises SystemExit: with a message, when none is found
    """
    if value and Path(value).expanduser().is_dir():
        return Path(value).expanduser()
    if value:
        settings = get_workspace(value)
    else:
        matching = [
            w
            for w in get_settings().workspaces
            if experiment and any(fnmatch(experiment, t) for t in w.triggers)
        ]
        settings = matching[0] if matching else get_workspace()
    if settings is None:
        raise SystemExit(
            f"No workspace folder or workspace id {value!r} in"
            " ~/.config/experimaestro/settings.yaml: give --workspace FOLDER,"
            " or run `python -m xpkit.configure --workspace FOLDER` first"
        )
    return Path(settings.path).expanduser()


def latest_experiment(workspace: Path) -> str:
    """The id of the experiment of a workspace that ran last

    :raises SystemExit: when the workspace holds no experiment
    """
    folder = workspace / "experiments"
    runs = sorted(folder.glob("*/current"), key=lambda run: run.stat().st_mtime)
    if not runs:
        raise SystemExit(f"Analysis stopped: {workspace} holds no experiment run")
    return runs[-1].parent.name


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m xpkit.analyze",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--workspace",
        help="workspace folder or id in experimaestro's settings (default: the"
        " one experimaestro gives the experiment)",
    )
    parser.add_argument(
        "--experiment",
        help="experiment id (default: the one that ran last)",
    )
    parser.add_argument("--run", help="run id (default: the latest run that has jobs)")
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
    workspace = workspace_folder(args.workspace, args.experiment)
    try:
        analyze(
            workspace,
            args.experiment or latest_experiment(workspace),
            args.run,
            output=args.output,
            tensorboard=not args.no_tensorboard,
        )
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"Analysis stopped: {error}")


if __name__ == "__main__":
    main()
