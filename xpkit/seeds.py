"""Results over several seeds: when the ``seed`` tag of a run takes more than
one value, one row per grid point of the other parameters, with the mean and
the standard deviation of each metric over the seeds that finished, and the
seeds that did not, named."""

from pathlib import Path

import pandas as pd

from .results_table import (
    best_first,
    failed_points,
    finished,
    markdown,
    number_cells,
    tag_columns,
)

SEED = "seed"
"""The tag of the learning job's seed"""

AVERAGED = ("test_accuracy", "test_loss", "validation_accuracy", "validation_loss")
"""The metrics given as a mean and a std over the seeds (same units as in
the per-job table: accuracies are fractions, losses as the tasks write them)"""

STATISTICS = [f"{name}_{kind}" for name in AVERAGED for kind in ("mean", "std")]
"""The columns of the means and stds, e.g. ``test_accuracy_mean``"""


def seeds(table: pd.DataFrame) -> list:
    """The seeds of a per-job table (see :func:`experiment_table`), sorted;
    an empty list when ``seed`` is not a tag"""
    if SEED not in tag_columns(table):
        return []
    return sorted(table[SEED].dropna().unique().tolist())


def several_seeds(table: pd.DataFrame) -> bool:
    """Whether the seed tag of a per-job table takes more than one value"""
    return len(seeds(table)) > 1


def missing_words(group: pd.DataFrame, expected: list) -> str:
    """The seeds of a grid point that did not finish, with the state that
    stopped them, e.g. ``2 (learn FAIL); 1 (evaluate RUNNING)``; seeds
    without any job are ``(no job)``"""
    words = []
    for row in group[~finished(group)].sort_values(SEED).itertuples(index=False):
        if row.learn_state != "DONE":
            words.append(f"{row.seed} (learn {row.learn_state})")
        else:
            words.append(f"{row.seed} (evaluate {row.evaluate_state})")
    present = set(group[SEED])
    words += [f"{seed} (no job)" for seed in expected if seed not in present]
    return "; ".join(words)


def by_point(table: pd.DataFrame) -> pd.DataFrame:
    """The per-job table made by :func:`experiment_table`, one row per grid
    point of the parameters other than the seed

    :return: a DataFrame sorted by decreasing ``test_accuracy_mean`` (points
        without one last), with columns: the tags but ``seed``;
        ``n_seeds``, the seeds whose two jobs are both DONE; for
        each metric of :data:`AVERAGED`, ``<metric>_mean`` and
        ``<metric>_std`` over those seeds (sample standard deviation,
        ddof=1: NaN with a single seed, both NaN with none); and
        ``missing_seeds``, the other seeds with their state (see
        :func:`missing_words`; empty when all finished). ``attrs`` are the
        table's, with ``tags`` the tags but ``seed``, ``seeds`` the seeds of
        the run and ``jobs`` the counts of its seed runs (``total``,
        ``done``, ``failed``)
    """
    names = [name for name in tag_columns(table) if name != SEED]
    expected = seeds(table)
    if names:
        groups = table.groupby(names, sort=False, dropna=False)
    else:
        groups = [((), table)]
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        done = group[finished(group)]
        row = dict(zip(names, key))
        row["n_seeds"] = len(done)
        for name in AVERAGED:
            row[f"{name}_mean"] = done[name].mean()
            row[f"{name}_std"] = done[name].std(ddof=1)
        row["missing_seeds"] = missing_words(group, expected)
        rows.append(row)
    columns = [*names, "n_seeds", *STATISTICS, "missing_seeds"]
    points = best_first(rows, columns, STATISTICS, "test_accuracy_mean", names)
    done = int(finished(table).sum())
    points.attrs.update(
        table.attrs,
        tags=names,
        seeds=expected,
        jobs={"total": len(table), "done": done, "failed": len(failed_points(table))},
    )
    return points


def format_by_point(points: pd.DataFrame) -> str:
    """A table made by :func:`by_point` as the analysis prints it: a line
    naming the run and counting its seed runs, then a Markdown table (means
    and stds to 4 decimals, ``nan`` when missing)"""
    shown = points.copy()
    for name in STATISTICS:
        shown[name] = number_cells(points[name], 4)
    text = markdown(shown, [*STATISTICS, "n_seeds", *tag_columns(points)])
    if "experiment" not in points.attrs:
        return text
    jobs, listed = points.attrs["jobs"], points.attrs["seeds"]
    unfinished = jobs["total"] - jobs["done"] - jobs["failed"]
    title = (
        f"{points.attrs['experiment']}, run {points.attrs['run']}:"
        f" {len(points)} grid points x {len(listed)} seeds"
        f" ({', '.join(str(seed) for seed in listed)}), {jobs['total']} runs,"
        f" {jobs['done']} done, {jobs['failed']} failed, {unfinished} unfinished;"
        " mean and std (ddof=1) over the seeds done, one row per job in results.csv"
    )
    return f"{title}\n\n{text}"


def write_by_point(points: pd.DataFrame, output: Path) -> Path:
    """Writes a table made by :func:`by_point` as ``results_by_point.csv``
    (full precision, NaN as an empty cell) into ``output``

    :return: its path
    """
    path = Path(output) / "results_by_point.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    points.to_csv(path, index=False)
    return path
