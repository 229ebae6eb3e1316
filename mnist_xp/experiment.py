"""The experiment: a grid of CNNs, each learnt then evaluated on MNIST.

``experimaestro run-experiment params.yaml`` reads the YAML file into a
:class:`Configuration`, then calls :func:`run`.
"""

# experimaestro's API
from experimaestro import tag
from experimaestro.experiments import ConfigurationBase, configuration
from experimaestro.experiments.cli import ExperimentHelper
from experimaestro.experiments.grid import GridSearch
from experimaestro.launcherfinder import find_launcher

# The generic layer (xpkit/): checks, grid, results, services, workarounds
from xpkit.analyze import show_results
from xpkit.checks import check_batch_fits, check_configuration, check_done_jobs
from xpkit.export_action import export_best_model
from xpkit.grid import combinations, read_grid
from xpkit.tensorboard_service import tensorboard_service
from xpkit.upstream_warnings import drop_untrue_warnings
from xpkit.waiting import wait_for_jobs
from xpkit.workspace_lock import wait_for_workspace

# This tutorial: MNIST, the CNN and the two tasks
from .data import MNISTDataset
from .learn import CNN, Evaluate, Learn
from .mnist_files import prepare_mnist, training_images


@configuration()
class Configuration(ConfigurationBase):
    """What the YAML file holds besides experimaestro's own keys (``id``,
    ``title``, ``module``...); the allowed values are in :data:`RULES`"""

    # The grid: a value, a list, a range... (xpkit/grid.py); one job per combination
    n_layers: GridSearch[int]
    """Values of CNN.n_layers to try (convolution blocks)"""

    hidden_dim: GridSearch[int]
    """Values of CNN.hidden_dim to try (channels per convolution)"""

    kernel_size: GridSearch[int]
    """Values of CNN.kernel_size to try (kernel side, in pixels)"""

    lr: GridSearch[float]
    """Values of Learn.lr to try (learning rates of Adam)"""

    seed: GridSearch[int]
    """Values of Learn.seed to try: each seed is a job of its own"""

    # The same for every job
    epochs: int
    """Learn.epochs: passes over the training images"""

    batch_size: int
    """Learn.batch_size: images per optimisation step"""

    n_val: int
    """Learn.n_val: steps between two validations"""

    n_validation: int
    """Learn.n_validation: training images held out for validation"""

    checkpoint_every: int
    """Learn.checkpoint_every: steps between two checkpoints"""

    time_margin: float
    """Learn.time_margin: seconds before a cluster time limit to stop at"""

    launcher: str
    """Resources a job needs, e.g. ``duration=1h & cpu(cores=4)``"""

    figures: bool = True
    """Draw the figures of the results at the end (matplotlib takes seconds)"""


RULES = {
    "n_layers": (lambda v: 1 <= v <= 4, "1 to 4: each block halves the 28-pixel side"),
    "kernel_size": (
        lambda v: v % 2 == 1 and 1 <= v <= 27,
        "an odd number of pixels, 1 to 27",
    ),
    "seed": (lambda v: 0 <= v < 2**63, "an integer from 0 to 2**63 - 1"),
}
"""Allowed values, for the keys that are not simply positive numbers:
(test, what is allowed in words)"""


def run(helper: ExperimentHelper, cfg: Configuration):
    """Learns and evaluates one CNN per combination of the grid's values, then
    prints their test results, best first"""
    drop_untrue_warnings()  # one of experimaestro 2.7 (upstream_warnings.py)
    grid = read_grid(cfg)  # the values to try for each key, checked
    check_configuration(cfg, tuple(grid), RULES)  # one clear line, before any job
    launcher = find_launcher(cfg.launcher)  # calls your launchers.py
    mnist = prepare_mnist(MNISTDataset)  # downloaded (or copied) once, and checked
    # A batch must fit in the images left for training
    check_batch_fits(cfg.batch_size, cfg.n_validation, training_images(mnist.train))
    # A Learn job whose parameters were deleted would not run again by itself
    check_done_jobs(helper.xp.workspace, Learn, "parameters.pth")
    # TensorBoard, to start from the web UI, the TUI or `experiments services`
    tensorboard = helper.xp.add_service(tensorboard_service(helper.xp))
    wait_for_workspace(helper.xp)  # experiments sharing jobs, one at a time (2.7)

    for point in combinations(grid):  # e.g. {"n_layers": 1, "hidden_dim": 32, ...}
        # tag(): shown in job listings and kept with the results
        model = CNN.C(
            n_layers=tag(point["n_layers"]),
            hidden_dim=tag(point["hidden_dim"]),
            kernel_size=tag(point["kernel_size"]),
        )
        learn = Learn.C(
            data=mnist.train,
            model=model,
            lr=tag(point["lr"]),
            seed=tag(point["seed"]),
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            n_validation=cfg.n_validation,
            n_val=cfg.n_val,
            checkpoint_every=cfg.checkpoint_every,
            time_margin=cfg.time_margin,
        )
        # submit() returns what Learn.__submit__ gives: the parameters' loader...
        load_parameters = learn.submit(launcher=launcher)
        # ... which runs first in the Evaluate job
        evaluate = Evaluate.C(data=mnist.test, model=model)
        # Evaluate has no lr or seed: tag them, so that it is told apart too
        evaluate.tag("lr", point["lr"]).tag("seed", point["seed"])
        evaluate.submit(launcher=launcher, init_tasks=[load_parameters])
        tensorboard.add(learn, learn.tensorboard_path)  # a run named by its tags

    # `experimaestro experiments actions run` copies the best model out
    helper.xp.add_action(export_best_model(helper.xp))
    wait_for_jobs(helper.xp)  # on Ctrl+C, one line: what goes on, what to do
    # The table of `python -m xpkit.analyze`; fails if a grid point failed
    show_results(helper.xp, cfg.figures)
