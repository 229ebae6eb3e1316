"""An action of the experiment: exporting the best model of a run.

Registered by the experiment (``xp.add_action``), it is listed and run, once
the jobs are over, by::

    experimaestro experiments --workspace WORKSPACE actions list MY_xp
    experimaestro experiments --workspace WORKSPACE actions run MY_xp ID

(or from the web interface). It copies ``parameters.pth`` of the grid point
with the best **validation** accuracy to a folder that it asks for (``--set
folder=PATH`` answers beforehand), with ``model.json``: the point's tags and
metrics. The test accuracy is not used to choose: a model chosen on the test
set has seen it, and its test accuracy no longer measures how it does on new
data.

experimaestro's actions are an alpha feature in 2.7 (the API may change).
"""

import json
import math
import shutil
from pathlib import Path

import click
from experimaestro import Action, Interaction, Meta

from .results_table import METRICS, experiment_table, tag_columns

PARAMETERS = "parameters.pth"
"""The file of a learning job's folder that holds the learnt parameters (the
learning task writes them there, e.g. as its ``parameters_path``)"""

DESCRIPTION = "model.json"
"""The file written beside the copy: tags and metrics of the point"""

CHOSEN_BY = ("validation_accuracy", "validation_loss")
"""Best validation accuracy; between equal ones, the lower validation loss"""


class ActionError(click.ClickException):
    """A message for the user: ``actions run`` prints it (``Error: ...``)
    without a traceback and exits with status 1; the web interface shows it.
    (Not a SystemExit: in the web interface, it would stop the server.)"""


class ExportBestModel(Action):
    """Copies the parameters of the grid point with the best validation
    accuracy of a run, and a JSON file of its tags and metrics, to a folder
    asked for (question ``folder``)"""

    # Meta: the action's identifier (the ID to give `actions run`) is then the
    # same for every run of the experiment
    workspace: Meta[Path]
    """The workspace folder"""

    experiment: Meta[str]
    """The experiment id, e.g. ``MY_xp``"""

    run: Meta[str]
    """The run id, e.g. ``20261130_035007``: the run that registered the action"""

    def describe(self) -> str:
        return (
            f"Copy the best model of {self.experiment} run {self.run}"
            " (best validation accuracy) to a folder"
        )

    def execute(self, interaction: Interaction) -> None:
        best, finished = best_point(self.workspace, self.experiment, self.run)
        folder = Path(
            interaction.text(
                "folder", "Folder to copy the best model to", default="best-model"
            )
        ).expanduser()
        target = folder / PARAMETERS
        if target.exists() and not interaction.checkbox(
            "overwrite", f"{target} exists: replace it?", default=False
        ):
            raise ActionError(f"Nothing copied: {target} exists (--set overwrite=true)")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best["source"], target)
        (folder / DESCRIPTION).write_text(json.dumps(best, indent=2) + "\n")
        tags = ",".join(f"{key}={value}" for key, value in best["tags"].items())
        print(
            f"Best of {finished} finished grid points by validation accuracy: {tags}"
            f" (validation accuracy {best['metrics']['validation_accuracy']:.4f})\n"
            f"Copied to {target.resolve()}, tags and metrics in"
            f" {(folder / DESCRIPTION).resolve()}",
            flush=True,
        )


def best_point(workspace: Path, experiment: str, run: str) -> tuple[dict, int]:
    """The grid point of a run whose learning job is done with the best
    validation accuracy (see :data:`CHOSEN_BY`)

    :return: what ``model.json`` holds (``experiment``, ``run``,
        ``chosen_by``, ``tags``, ``metrics`` with null for a missing one,
        ``source``: the parameters file copied) and the number of points whose
        learning job is done
    :raises ActionError: if the run cannot be read or no learning job is done
    """
    try:
        table = experiment_table(workspace, experiment, run)
    except (FileNotFoundError, ValueError) as error:
        raise ActionError(f"Cannot read the run: {error}") from None
    tags = tag_columns(table)
    done = table[(table.learn_state == "DONE") & table.validation_accuracy.notna()]
    if done.empty:
        raise ActionError(
            f"No grid point of {experiment} run {run} has finished learning yet:"
            " nothing to export (see `python -m xpkit.analyze`)"
        )
    # Sorted by tags first, so that the choice never depends on the test results
    done = done.sort_values(tags, kind="stable").sort_values(
        list(CHOSEN_BY), ascending=[False, True], kind="stable"
    )
    row = done.iloc[0]
    source = Path(row.learn_folder) / PARAMETERS
    if not source.is_file():
        raise ActionError(f"{source} is missing: was the job folder cleaned?")
    best = {
        "experiment": experiment,
        "run": run,
        "chosen_by": CHOSEN_BY[0],
        "tags": {name: plain(row[name]) for name in tags},
        "metrics": {name: plain(row[name]) for name in METRICS},
        "source": str(source),
    }
    return best, len(done)


def plain(value):
    """A table cell as JSON can write it: NumPy numbers become Python ones,
    NaN (a missing metric) None"""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def export_best_model(xp) -> ExportBestModel:
    """The action for a run of the experiment, to give to ``xp.add_action``

    :param xp: the experiment (``helper.xp`` in ``run()``)
    """
    return ExportBestModel.C(
        workspace=xp.workspace.path, experiment=xp.name, run=xp.run_id
    )
