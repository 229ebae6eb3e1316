"""The experiment: a grid of CNNs, each learnt then evaluated on MNIST.

``experimaestro run-experiment params.yaml`` reads the YAML file into a
:class:`Configuration`, then calls :func:`run`.
"""

import itertools

from experimaestro import RunMode, tag
from experimaestro.experiments import ConfigurationBase, configuration
from experimaestro.experiments.cli import ExperimentHelper
from experimaestro.launcherfinder import find_launcher
from experimaestro.scheduler.experiment import FailedExperiment

from .analyze import analyze, failed_points
from .data import MNISTDataset
from .learn import CNN, Evaluate, Learn
from .mnist_files import prepare_mnist
from .speed import exit_quickly
from .validation import check_configuration

GRID = ("n_layers", "hidden_dim", "kernel_size")
"""The keys that hold lists of values: one job per combination"""


@configuration()
class Configuration(ConfigurationBase):
    """What the YAML file holds besides experimaestro's own keys (``id``,
    ``title``, ``module``...); the allowed values are in validation.py"""

    # The grid: lists of values
    n_layers: list[int]
    """Values of CNN.n_layers to try (convolution blocks)"""

    hidden_dim: list[int]
    """Values of CNN.hidden_dim to try (channels per convolution)"""

    kernel_size: list[int]
    """Values of CNN.kernel_size to try (kernel side, in pixels)"""

    # The same for every job
    epochs: int
    """Learn.epochs: passes over the training images"""

    lr: float
    """Learn.lr: learning rate of Adam"""

    batch_size: int
    """Learn.batch_size: images per optimisation step"""

    n_val: int
    """Learn.n_val: steps between two validations"""

    n_validation: int
    """Learn.n_validation: training images held out for validation"""

    seed: int
    """Learn.seed: another seed gives other jobs"""

    checkpoint_every: int
    """Learn.checkpoint_every: steps between two checkpoints"""

    time_margin: float
    """Learn.time_margin: seconds before a cluster time limit to stop at"""

    launcher: str
    """Resources a job needs, e.g. ``duration=1h & cpu(cores=4)``"""

    figures: bool = True
    """Draw the figures of the results at the end (matplotlib takes seconds)"""


def run(helper: ExperimentHelper, cfg: Configuration):
    """Learns and evaluates one CNN per combination of the grid's values, then
    prints their test results, best first"""
    check_configuration(cfg, GRID)  # a clear message, before any job is submitted
    launcher = find_launcher(cfg.launcher, tags=["slurm"])  # see launchers.py
    mnist = prepare_mnist(MNISTDataset)  # downloaded (or copied) once, and checked

    for n_layers, hidden_dim, kernel_size in itertools.product(
        cfg.n_layers, cfg.hidden_dim, cfg.kernel_size
    ):
        # tag(): shown in job listings and kept with the results
        model = CNN.C(
            n_layers=tag(n_layers),
            hidden_dim=tag(hidden_dim),
            kernel_size=tag(kernel_size),
        )
        learn = Learn.C(
            data=mnist.train,
            model=model,
            epochs=cfg.epochs,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            n_validation=cfg.n_validation,
            seed=cfg.seed,
            n_val=cfg.n_val,
            checkpoint_every=cfg.checkpoint_every,
            time_margin=cfg.time_margin,
        )
        # submit() returns what Learn.__submit__ gives: the parameters' loader...
        load_parameters = learn.submit(launcher=launcher)
        # ... which runs first in the Evaluate job
        Evaluate.C(data=mnist.test, model=model).submit(
            launcher=launcher, init_tasks=[load_parameters]
        )

    helper.xp.wait()
    show_results(helper.xp, cfg.figures)


def show_results(xp, figures: bool):
    """Prints the table of ``python -m mnist_xp.analyze`` and writes its files
    in the run's results folder; fails if a grid point failed"""
    if xp.run_mode != RunMode.NORMAL:
        return  # a dry run has no results
    table = analyze(
        xp.workspace.path, xp.name, xp.run_id, output=xp.resultspath, figures=figures
    )
    exit_quickly()
    if failed := failed_points(table):
        raise FailedExperiment(
            f"{len(failed)} of {len(table)} grid points failed:\n" + "\n".join(failed)
        )
