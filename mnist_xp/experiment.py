"""The experiment: a grid of CNNs, each learnt then evaluated on MNIST.

``experimaestro run-experiment params.yaml`` reads the YAML file into a
:class:`Configuration`, then calls :func:`run`.
"""

import contextlib
import io
import itertools
import logging
import math
import sys
from pathlib import Path

import attr
from arpeggio import NoMatch
from datamaestro import prepare_dataset
from datamaestro.definitions import DownloadError
from experimaestro import RunMode, tag
from experimaestro.exceptions import HandledException
from experimaestro.experiments import ConfigurationBase, configuration
from experimaestro.experiments.cli import ExperimentHelper
from experimaestro.launcherfinder import find_launcher
from experimaestro.launcherfinder.parser import parse
from experimaestro.scheduler.experiment import FailedExperiment

from .analyze import analyze, failed_points
from .data import DatasetError, MNISTDataset
from .learn import CNN, Evaluate, Learn, exit_quickly

logger = logging.getLogger(__name__)

GRID = ("n_layers", "hidden_dim", "kernel_size")
"""Configuration keys holding the lists of values to sweep"""


class ConfigurationError(HandledException):
    """A value of the YAML configuration is missing, unknown or not allowed;
    raised before any job is submitted"""


@configuration()
class Configuration(ConfigurationBase):
    """What ``params.yaml`` may hold, besides experimaestro's own keys
    (``id``, ``title``, ``module``...)"""

    # Lists: one job per combination of their values
    n_layers: list[int]
    """Numbers of convolution blocks to try (1 to 4)"""

    hidden_dim: list[int]
    """Numbers of channels per convolution to try"""

    kernel_size: list[int]
    """Kernel sides to try (odd numbers of pixels)"""

    # Scalars: the same for every job
    epochs: int
    """Passes over the training images"""

    lr: float
    """Learning rate of Adam"""

    batch_size: int
    """Images per optimisation step"""

    n_val: int
    """Steps between two validations"""

    n_validation: int = 10_000
    """Training images held out for validation"""

    checkpoint_every: int = 500
    """Steps between two checkpoints of a learning job"""

    time_margin: float = 120.0
    """Seconds before a cluster time limit at which a learning job checkpoints
    and asks experimaestro to resubmit it"""

    seed: int = 0
    """Seed of the random generators: another seed gives other jobs"""

    launcher: str = "duration=1h & cpu(cores=1)"
    """Resources a job needs, e.g. ``duration=1h & cuda(mem=4G)*1 & cpu(cores=4)``"""

    figures: bool = True
    """Draw the figures of the results at the end (2 to 3 s for matplotlib);
    ``python -m mnist_xp.analyze`` draws them at any time"""


def check_configuration(cfg: Configuration, keys: set[str] | None):
    """Stops with one clear message if a value is not allowed

    :param keys: the keys given in the YAML files and ``-c`` options, or None
        when unknown
    :raises ConfigurationError: naming the key, its value and what is allowed
    """
    if keys is not None:
        allowed = {field.name for field in attr.fields(Configuration)}
        for key in sorted(keys - allowed):
            raise ConfigurationError(
                f"{key}: unknown key. Allowed keys: {', '.join(sorted(allowed))}"
            )

    def fail(key, value, allowed):
        raise ConfigurationError(f"{key}: {value!r} is not allowed ({allowed})")

    for key in GRID:
        values = getattr(cfg, key)
        if not values:
            fail(key, values, "give a non-empty list of values")
    for value in cfg.n_layers:
        if not 1 <= value <= 4:
            fail("n_layers", value, "1 to 4: each block halves the 28-pixel side")
    for value in cfg.hidden_dim:
        if value < 1:
            fail("hidden_dim", value, "a positive number of channels")
    for value in cfg.kernel_size:
        if value < 1 or value % 2 == 0 or value > 27:
            fail("kernel_size", value, "an odd number of pixels from 1 to 27")
    for key in ("epochs", "batch_size", "n_val", "n_validation", "checkpoint_every"):
        if getattr(cfg, key) < 1:
            fail(key, getattr(cfg, key), "a positive integer")
    for key in ("lr", "time_margin"):
        if not (math.isfinite(getattr(cfg, key)) and getattr(cfg, key) > 0):
            fail(key, getattr(cfg, key), "a positive number")
    if problem := requirement_problem(cfg.launcher):
        fail("launcher", cfg.launcher, f"{problem}; e.g. 'duration=2h & cpu(cores=2)'")


def requirement_problem(requirement: str) -> str | None:
    """Why experimaestro cannot parse a requirement string (None if it can)"""
    try:
        parse(requirement)
    except (NoMatch, ValueError) as error:  # bad syntax, memory without unit
        return str(error)
    return None


def given_keys() -> set[str] | None:
    """The keys of the configuration as written by the user (YAML files and
    ``-c`` options): experimaestro drops unknown keys silently, so we read
    them again with its own loader"""
    import click
    from experimaestro.experiments.cli import ConfigurationLoader
    from experimaestro.utils.config import from_dotlist

    context = click.get_current_context(silent=True)
    if context is None or "yaml_file" not in context.params:
        return None
    loader = ConfigurationLoader()
    for path in (
        *context.params["pre_yaml"],
        context.params["yaml_file"],
        *context.params["post_yaml"],
    ):
        loader.load(Path(path))
    keys = {key for content in loader.yamls for key in content}
    return keys | set(from_dotlist(context.params["extra_conf"]))


def prepare_mnist():
    """Gets MNIST ready (downloaded or copied, then checked) before any job is
    submitted, so that no job fails for want of data

    :raises ConfigurationError: saying what is wrong with the files
    """
    # datamaestro prints the traceback of a failed download: keep it for
    # unexpected errors only, ours (DatasetError) say all there is to say
    log = io.StringIO()
    try:
        with contextlib.redirect_stderr(log):
            return prepare_dataset(MNISTDataset, download=True)
    except DownloadError as error:
        if not isinstance(error.__cause__, DatasetError):
            sys.stderr.write(log.getvalue())
            raise
        problem = error.__cause__
    # Raised outside the except block, so that only our message is shown
    raise ConfigurationError(f"MNIST is not available: {problem}")


def run(helper: ExperimentHelper, cfg: Configuration):
    """Learns and evaluates one CNN per combination of the grid's values, then
    prints their test results, best first"""
    check_configuration(cfg, given_keys())
    launcher = find_launcher(cfg.launcher, tags=["slurm"])
    mnist = prepare_mnist()

    for n_layers, hidden_dim, kernel_size in itertools.product(
        *(getattr(cfg, key) for key in GRID)
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
            n_val=cfg.n_val,
            n_validation=cfg.n_validation,
            seed=cfg.seed,
            checkpoint_every=cfg.checkpoint_every,
            time_margin=cfg.time_margin,
        )
        # submit() returns the loader of the learnt parameters...
        load_parameters = learn.submit(launcher=launcher)
        # ... which runs before Evaluate, within the same job
        Evaluate.C(data=mnist.test, model=model).submit(
            launcher=launcher, init_tasks=[load_parameters]
        )

    helper.xp.wait()
    if helper.xp.run_mode != RunMode.NORMAL:
        return  # dry runs have no job results to show
    # The table of `python -m mnist_xp.analyze`, and its files in xp.resultspath
    xp = helper.xp
    table = analyze(
        xp.workspace.path,
        xp.name,
        xp.run_id,
        output=xp.resultspath,
        figures=cfg.figures,
    )
    exit_quickly()
    if failed := failed_points(table):
        raise FailedExperiment(
            f"{len(failed)} of {len(table)} grid points failed:\n" + "\n".join(failed)
        )
