"""TensorBoard as a service of the experiment (``xpm-mlboard``'s
:class:`~xpm_mlboard.TensorboardService`).

The experiment adds the service once (``xp.add_service``), then each learning
job to it (``service.add(learn, learn.tensorboard_path)``). The service keeps,
in the run's results folder, ``tensorboard-service/``: one link per learning
job named by its tags (e.g. ``lr=0.001_seed=0``)
to the job's TensorBoard folder, and beside each link a ``<link>.tags.json``
holding the tags (what :func:`xpm_mlboard.exporters.wandb.sync` reads to send
the runs to Weights & Biases). experimaestro lists the service in its web
interface, its terminal interface and ``experimaestro experiments services``,
which start TensorBoard on that folder on demand (``python -m
tensorboard.main --host localhost --port 0``: the machine itself only, a free
port), while the experiment runs and after.

The folder is made by the run only (not by ``python -m xpkit.analyze``):
the analysis keeps making its own ``tensorboard/`` folder
(:func:`xpkit.tensorboard_files.link_tensorboard`) for the runs made
before the service, for other output folders, and with relative links that
survive moving the workspace (the service's links are absolute).
"""

import logging
from pathlib import Path

from experimaestro import RunMode
from xpm_mlboard import TensorboardService

SERVICE_FOLDER = "tensorboard-service"
"""Sub-folder of the run's results folder where the service links the runs"""

SERVICE_HINT = ("You can monitor learning with:", "tensorboard --logdir=")
"""The beginnings of the two lines xpm-mlboard 0.3.1 logs as the service
starts: the run's end already prints the command (for the analysis' folder)"""


class DropServiceHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(SERVICE_HINT)


def results_folder(xp) -> Path:
    """The run's results folder, ``<workspace>/experiments/<id>/<run>/results``

    Workaround for experimaestro 2.7.0, where ``xp.resultspath`` raises a
    RuntimeError outside the normal run mode (``--run-mode dry_run`` or
    ``generate``), even to only name the folder: the service needs its path in
    every mode (it makes nothing outside the normal one). Use
    ``xp.resultspath`` alone once it names the folder in every mode.
    """
    if xp.run_mode == RunMode.NORMAL:
        return xp.resultspath
    return xp.workdir / "results"


def tensorboard_service(xp) -> TensorboardService:
    """The TensorBoard service of a run of the experiment, to give to
    ``xp.add_service``; in the normal run mode, adding it empties (or makes)
    its folder, ``<results>/tensorboard-service``

    :param xp: the experiment (``helper.xp`` in ``run()``)
    """
    # One `tensorboard --logdir` hint a run, not two
    hints = logging.getLogger("xpm.mlboard.tensorboard")
    if not any(isinstance(f, DropServiceHint) for f in hints.filters):
        hints.addFilter(DropServiceHint())
    return TensorboardService(results_folder(xp) / SERVICE_FOLDER)
