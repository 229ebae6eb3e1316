"""Identifiers: what changes a job, and what does not."""

from experimaestro import Config, Constant, Param, field

from mnist_xp.data import MNISTLabelledImages
from mnist_xp.learn import CNN, Learn


def identifier(config) -> str:
    return config.__identifier__().all.hex()


def learn(**kwargs):
    data = MNISTLabelledImages.C(id="com.lecun.mnist.train", root="/data", train=True)
    return Learn.C(data=data, model=CNN.C(), **kwargs)


def test_default_values_do_not_change_the_identifier():
    assert identifier(CNN.C()) == identifier(CNN.C(n_layers=2))
    assert identifier(CNN.C()) != identifier(CNN.C(n_layers=1))


def test_seed_changes_the_job():
    assert identifier(learn(seed=0)) != identifier(learn(seed=1))


def test_meta_parameters_do_not_change_the_job():
    assert identifier(learn(n_val=100)) == identifier(learn(n_val=10))
    data = MNISTLabelledImages.C(
        id="com.lecun.mnist.train", root="/elsewhere", train=True
    )
    assert identifier(learn()) == identifier(Learn.C(data=data, model=CNN.C()))


def model_class(default_layers: int, code_version: int = 1, ignore_default=False):
    """The same configuration (same experimaestro id) as written in two
    versions of the code"""

    class Model(Config):
        __xpmid__ = "tests.model"
        n_layers: Param[int] = field(
            default=default_layers, ignore_default=ignore_default
        )
        version: Constant[int] = code_version

    return Model


def test_changing_a_default_changes_the_identifier():
    # field(default=...): the default value is part of the identifier
    assert identifier(model_class(2).C()) != identifier(model_class(3).C())
    assert identifier(model_class(2).C(n_layers=3)) == identifier(model_class(3).C())


def test_an_ignored_default_is_a_trap():
    # ignore_default=True (what a bare `= 2` means, deprecated in 2.7): after
    # changing the default from 2 to 3, the jobs run with 2 layers are taken
    # for the new default (experimaestro issue #147)...
    old, new = model_class(2, ignore_default=True), model_class(3, ignore_default=True)
    assert identifier(old.C()) == identifier(new.C())
    # ... unless the version is bumped: then every job is new
    bumped = model_class(3, code_version=2, ignore_default=True)
    assert identifier(bumped.C()) != identifier(old.C())
