"""A ResNet-18 per grid point, learnt then evaluated on fake CIFAR-10 images."""

from experimaestro import tag
from experimaestro.experiments import ConfigurationBase, configuration
from experimaestro.experiments.grid import GridSearch
from experimaestro.launcherfinder import find_launcher

from xpkit.analyze import show_results
from xpkit.checks import check_batch_fits, check_configuration, check_done_jobs
from xpkit.export_action import export_best_model
from xpkit.grid import combinations, read_grid
from xpkit.tensorboard_service import tensorboard_service
from xpkit.upstream_warnings import drop_untrue_warnings
from xpkit.waiting import wait_for_jobs
from xpkit.workspace_lock import wait_for_workspace

from .data import FakeCIFAR
from .learn import Evaluate, Learn, ResNet


@configuration()
class Configuration(ConfigurationBase):
    """The keys of params.yaml, besides experimaestro's own (id, module...)"""

    lr: GridSearch[float]  # learning rates to try
    seed: GridSearch[int]  # seeds to try: the results give mean ± std over them
    epochs: int  # passes over the training images
    batch_size: int  # images per step
    n_train: int  # training images
    n_test: int  # validation images, and as many test images
    launcher: str  # what a job needs, e.g. "duration=1h & cpu(cores=2)"


RULES = {"seed": (lambda v: v >= 0, "an integer from 0")}  # others: positive


def run(helper, cfg: Configuration):
    drop_untrue_warnings()  # one of experimaestro 2.7 (xpkit/upstream_warnings.py)
    grid = read_grid(cfg)  # e.g. {"lr": [0.01, 0.001], "seed": [0, 1]}
    check_configuration(cfg, tuple(grid), RULES)  # one line per mistake
    check_batch_fits(cfg.batch_size, 0, cfg.n_train)
    check_done_jobs(helper.xp.workspace, Learn, "parameters.pth")  # deleted by hand?
    launcher = find_launcher(cfg.launcher)
    train = FakeCIFAR.C(size=cfg.n_train, crop=True)
    validation = FakeCIFAR.C(size=cfg.n_test, offset=cfg.n_train)
    test = FakeCIFAR.C(size=cfg.n_test, offset=cfg.n_train + cfg.n_test)
    same = {"epochs": cfg.epochs, "batch_size": cfg.batch_size}
    tensorboard = helper.xp.add_service(tensorboard_service(helper.xp))
    wait_for_workspace(helper.xp)  # experiments sharing jobs: one at a time
    for point in combinations(grid):  # {"lr": 0.01, "seed": 0}: Learn parameters
        model, tags = ResNet.C(), {k: tag(v) for k, v in point.items()}
        learn = Learn.C(data=train, validation=validation, model=model, **tags, **same)
        load_parameters = learn.submit(launcher=launcher)  # see Learn.__submit__
        evaluate = Evaluate.C(data=test, model=model)
        for k, v in point.items():  # the same tags as its Learn job
            evaluate.tag(k, v)
        evaluate.submit(launcher=launcher, init_tasks=[load_parameters])
        tensorboard.add(learn, learn.tensorboard_path)
    helper.xp.add_action(export_best_model(helper.xp))  # exports the best model
    wait_for_jobs(helper.xp)  # helper.xp.wait(), with one line on Ctrl+C
    show_results(helper.xp)  # the table of python -m xpkit.analyze
