"""Identifiers: what changes a job, and what does not."""

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
