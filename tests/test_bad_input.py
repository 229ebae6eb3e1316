"""Bad input stops the experiment with one clear message, before any job is
submitted (each case replays a mistake researchers make)."""

import gzip
import shutil

import pytest
from conftest import REPO, SAMPLE, Sandbox

DEBUG = REPO / "debug.yaml"

# (YAML lines added to debug.yaml, words the message must hold)
CASES = {
    "misspelled key": ("hidden_dims: [16]", ["hidden_dims", "unknown key"]),
    "scalar for a list": ("n_layers: 2", ["n_layers", "valid list"]),
    "empty list": ("n_layers: []", ["n_layers", "non-empty list"]),
    "fractional epochs": ("epochs: 1.5", ["epochs", "1.5"]),
    "epochs in words": ("epochs: five", ["epochs", "five"]),
    "zero kernel": ("kernel_size: [0]", ["kernel_size", "0"]),
    "even kernel": ("kernel_size: [4]", ["kernel_size", "odd"]),
    "negative channels": ("hidden_dim: [-1]", ["hidden_dim", "-1"]),
    "zero layers": ("n_layers: [0]", ["n_layers", "1 to 4"]),
    "zero learning rate": ("lr: 0", ["lr", "positive"]),
    "zero batch size": ("batch_size: 0", ["batch_size", "positive"]),
    "zero validation interval": ("n_val: 0", ["n_val", "positive"]),
    "memory without unit": ('launcher: "gpu(mem=4)"', ["launcher", "no unit"]),
    "fractional duration": ('launcher: "duration=1.5h"', ["launcher", "duration=1.5h"]),
}


def assert_stopped_early(sandbox: Sandbox, process, words):
    assert process.returncode != 0
    message = process.stderr + process.stdout
    for word in words:
        assert word in message, f"{word!r} not in:\n{message[-3000:]}"
    assert not (sandbox.workspace / "jobs").exists(), "a job was submitted"


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_value(sandbox, tmp_path, case):
    lines, words = CASES[case]
    yaml = tmp_path / "bad.yaml"
    yaml.write_text(f"imports: [{DEBUG}]\nid: MNIST_bad\n{lines}\n")
    assert_stopped_early(sandbox, sandbox.experiment(yaml, check=False), words)


def test_missing_value(sandbox, tmp_path):
    # debug.yaml without what it imports from params.yaml: no grid, no epochs...
    content = DEBUG.read_text().replace("imports: [params.yaml]", "")
    yaml = tmp_path / "missing.yaml"
    yaml.write_text(f"{content}\nmodule: mnist_xp.experiment\npythonpath: [{REPO}]\n")
    process = sandbox.experiment(yaml, check=False)
    assert_stopped_early(sandbox, process, ["epochs", "Field required"])


def test_bad_override(sandbox):
    process = sandbox.experiment(DEBUG, "-c", "epochs=five", check=False)
    assert_stopped_early(sandbox, process, ["epochs", "five"])


@pytest.fixture
def mirror(sandbox, tmp_path):
    """A copy of the sample MNIST folder that a test can damage"""
    folder = tmp_path / "mirror"
    shutil.copytree(SAMPLE, folder)
    sandbox.env["MNIST_XP_MIRROR"] = str(folder)
    return folder


def test_missing_mirror(sandbox, tmp_path):
    sandbox.env["MNIST_XP_MIRROR"] = str(tmp_path / "nowhere")
    process = sandbox.experiment(DEBUG, check=False)
    assert_stopped_early(
        sandbox, process, ["MNIST_XP_MIRROR", "nowhere", "not a folder"]
    )


def test_missing_file(sandbox, mirror):
    (mirror / "t10k-labels-idx1-ubyte.gz").unlink()
    process = sandbox.experiment(DEBUG, check=False)
    assert_stopped_early(sandbox, process, ["t10k-labels-idx1-ubyte", "neither"])


def test_corrupted_file(sandbox, mirror):
    path = mirror / "train-images-idx3-ubyte.gz"
    content = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(content[: len(content) // 2]))  # truncated
    process = sandbox.experiment(DEBUG, check=False)
    assert_stopped_early(sandbox, process, ["train-images-idx3-ubyte", "MD5"])
    assert "Traceback" not in process.stderr
    # Nothing half-copied was kept: once repaired, the data is taken
    shutil.copy(SAMPLE / path.name, path)
    yaml = REPO / "tests" / "sample.yaml"
    sandbox.experiment(yaml)
    assert sandbox.results()[0]["n_images"] == 1000


def test_no_network_and_no_mirror(sandbox):
    del sandbox.env["MNIST_XP_MIRROR"]
    # Every download goes through a proxy that does not exist: no network
    sandbox.env.update(
        http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9"
    )
    process = sandbox.experiment(DEBUG, check=False)
    assert_stopped_early(
        sandbox, process, ["Could not download MNIST", "MNIST_XP_MIRROR"]
    )
    assert "Traceback" not in process.stderr
