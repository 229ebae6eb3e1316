"""The two figures of the analysis: test accuracy against each swept
parameter, and validation curves; matplotlib is imported only when drawing."""

import math
from pathlib import Path

import pandas as pd

from .results_table import labels, tag_columns
from .run_jobs import point_label
from .seeds import by_point, seeds, several_seeds
from .tensorboard_files import learning_curves


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
    when none is swept. With several seeds, the seed is not a parameter: a
    grid point is a combination of the other tags (see :func:`by_point`),
    drawn at its mean over the seeds done, with its std

    :return: ``(x label, tick labels, lines, legend title)`` per panel, where
        ``lines`` is a list of ``(label, x positions, test accuracies,
        stds)``, ``stds`` being None with a single seed
    """
    if several_seeds(table):
        table, accuracy, spread = by_point(table), "test_accuracy_mean", True
    else:
        accuracy, spread = "test_accuracy", False

    def line(label: str, x: list, rows: pd.DataFrame) -> tuple:
        stds = list(rows.test_accuracy_std) if spread else None
        return (label, x, list(rows[accuracy]), stds)

    names = tag_columns(table)
    swept = [name for name in names if table[name].nunique() > 1]
    if not swept:
        points = labels(table)
        return [("grid point", points, [line("", list(range(len(points))), table)], "")]
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
            x = [position[value] for value in group[parameter]]
            lines.append(line(point_label(dict(zip(others, key))), x, group))
        panels.append((parameter, [str(v) for v in values], lines, ", ".join(others)))
    return panels


def accuracy_figure(table: pd.DataFrame):
    """The figure of :func:`plot_test_accuracy` (a matplotlib ``Figure``)"""
    panels = accuracy_panels(table)
    figure, axes = new_figure(len(panels))
    for axis, (parameter, ticks, lines, legend) in zip(axes, panels):
        for label, x, accuracy, stds in lines:
            if stds is None:
                axis.plot(x, accuracy, marker="o", label=label or None)
            else:  # mean and std over the seeds
                axis.errorbar(
                    x, accuracy, yerr=stds, marker="o", capsize=4, label=label or None
                )
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
    notes = []
    if several_seeds(table):
        notes.append(f"mean ± std over {len(seeds(table))} seeds (those done)")
    crossed = [a for _, _, lines, _ in panels for _, _, y, _ in lines for a in y]
    if any(math.isnan(a) for a in crossed):
        notes.append("red ×: no test accuracy (failed or unfinished)")
    if notes:
        figure.suptitle("; ".join(notes), fontsize="small")
    return figure


def plot_test_accuracy(table: pd.DataFrame, path: Path) -> Path:
    """Writes a PNG of the test accuracy against each swept parameter: one
    panel per parameter, its values evenly spaced on the x axis, one line
    per combination of the other swept parameters (see
    :func:`accuracy_panels`); with several seeds, their mean with ± std
    error bars. Points without a test accuracy (failed, unfinished; with
    seeds: none done) are marked with a red cross on the x axis.

    :return: ``path``
    """
    return save(accuracy_figure(table), path)


def plot_curves(table: pd.DataFrame, path: Path) -> Path:
    """Writes :func:`curves_figure` as a PNG

    :return: ``path``
    """
    return save(curves_figure(table), path)


def curves_figure(table: pd.DataFrame):
    """The validation accuracy (left) and loss (right) against the training
    step, one line per learning job, read from its TensorBoard event files
    (the scalars ``validation/accuracy`` and ``validation/loss``, see
    :func:`learning_curves`): a matplotlib Figure"""
    curves = learning_curves(table)
    figure, axes = new_figure(2)
    for axis, scalar, name in zip(
        axes,
        ("validation/accuracy", "validation/loss"),
        ("validation accuracy", "validation loss"),
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
    return figure


def save(figure, path: Path) -> Path:
    """Writes ``figure`` as a PNG at ``path`` (its folder made if needed)

    :return: ``path``
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
