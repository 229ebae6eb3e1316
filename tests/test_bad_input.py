"""Bad input stops the experiment with one clear message, before any job is
submitted (each case replays a mistake researchers make)."""

import gzip
import json
import shutil

import pytest
from conftest import REPO, SAMPLE, SAMPLE_YAML, Sandbox

DEBUG = REPO / "debug.yaml"

# (YAML lines added to debug.yaml, words the message must hold)
CASES = {
    "misspelled key": (
        "hidden_dims: [16]",
        ["hidden_dims: unknown key (did you mean hidden_dim?)"],
    ),
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
    # debug.yaml holds out 1,000 of the sample's 5,000 training images
    "batch larger than the images left": (
        "batch_size: 4500",
        ["batch_size: 4500 is not allowed", "at most 4,000"],
    ),
    "validation leaving less than a batch": (
        "n_validation: 4990",
        ["n_validation: 4990 is not allowed", "at most 4,936"],
    ),
    "validation of every image": (
        "n_validation: 5000",
        ["n_validation: 5000 is not allowed", "5,000 training images"],
    ),
    "epochs as a truth value": ("epochs: true", ["epochs: true is not allowed"]),
    "seed beyond 64 bits": ("seed: [9223372036854775808]", ["seed", "2**63 - 1"]),
    "zero cores": ('launcher: "cpu(cores=0)"', ["launcher", "cores=0 is zero"]),
    "zero duration": ('launcher: "duration=0h"', ["launcher", "duration=0h is zero"]),
    "zero memory": ('launcher: "cpu(mem=0G)"', ["launcher", "mem=0G is zero"]),
    "zero GPU memory": ('launcher: "cuda(mem=0G)"', ["cuda(mem=0G)", "mem=0G is zero"]),
    "zero GPUs": ('launcher: "cuda(mem=4G)*0"', ["cuda(mem=4G)*0", "*0 is zero"]),
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


def test_misspelled_required_key(sandbox, tmp_path):
    # Without hidden_dim, experimaestro alone says only "hidden_dim Field required"
    lines = (REPO / "params.yaml").read_text().splitlines()
    assert "hidden_dim:" in [line.split(" ")[0] for line in lines]
    yaml = tmp_path / "params.yaml"
    yaml.write_text(
        "\n".join(
            line.replace("hidden_dim:", "hidden_dims:", 1)
            for line in lines
            if not line.startswith("pythonpath:")  # "." is the repository
        )
        + f"\npythonpath: [{REPO}]\n"
    )
    process = sandbox.experiment(yaml, check=False)
    words = ["hidden_dims: unknown key (did you mean hidden_dim?). Allowed keys:"]
    assert_stopped_early(sandbox, process, words)
    assert "Field required" not in process.stderr + process.stdout


def test_bad_poll_interval_with_local_jobs(sandbox):
    # Checked although the jobs run on this machine (XPKIT_LAUNCHER=local)
    sandbox.env["XPKIT_SLURM_POLL"] = "0"
    process = sandbox.experiment(DEBUG, check=False)
    assert_stopped_early(sandbox, process, ["XPKIT_SLURM_POLL='0'", "positive"])


ANOTHER_LAUNCHERS_FILE = """\
from experimaestro.connectors.local import LocalConnector
from experimaestro.launchers.direct import DirectLauncher


def find_launcher(requirement, tags=()):
    return DirectLauncher(LocalConnector.instance())
"""


@pytest.mark.parametrize("launchers", ["missing", "another file", "no function"])
def test_slurm_without_the_setup(sandbox, launchers):
    # Without this repository's launchers.py, the jobs would run here silently
    path = sandbox.home / ".config" / "experimaestro" / "launchers.py"
    path.unlink()
    if launchers == "another file":
        path.write_text(ANOTHER_LAUNCHERS_FILE)
    elif launchers == "no function":
        path.write_text("# find_launcher to come\n")
    sandbox.env["XPKIT_LAUNCHER"] = "slurm"
    process = sandbox.experiment(DEBUG, check=False)
    words = ["XPKIT_LAUNCHER=slurm", str(path), "python -m xpkit.configure"]
    assert_stopped_early(sandbox, process, words)


def test_bad_override(sandbox):
    process = sandbox.experiment(DEBUG, "-c", "epochs=five", check=False)
    assert_stopped_early(sandbox, process, ["epochs", "five"])


def test_unreadable_list_override(sandbox):
    process = sandbox.experiment(DEBUG, "-c", "n_layers=[1,2", check=False)
    words = ["n_layers: '[1,2' is not allowed", "-c 'n_layers=[1, 2]'"]
    assert_stopped_early(sandbox, process, words)
    assert "Traceback" not in process.stderr + process.stdout


def test_list_override_and_large_seed(sandbox):
    # -c can set a grid's list; a seed of 15 digits must not overflow PyTorch's
    overrides = ["n_layers=[1,2]", "seed=100000000000000", "epochs=1"]
    sandbox.experiment(SAMPLE_YAML, *(a for item in overrides for a in ("-c", item)))
    assert len(sandbox.jobs("learn")) == 2
    for job in sandbox.jobs("learn"):
        assert (job / "learn.done").exists()
        params = json.loads((job / "params.json").read_text())
        assert "100000000000000" in json.dumps(params)


def test_override_without_value(sandbox):
    # experimaestro alone would warn, then run with the epochs of the file
    process = sandbox.experiment(DEBUG, "-c", "epochs", check=False)
    assert_stopped_early(sandbox, process, ["-c epochs: give key=value"])


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


@pytest.mark.parametrize("experiment_id", ["../../escape", ".", "MNIST_a/b"])
def test_experiment_id_that_is_not_one_folder(sandbox, tmp_path, experiment_id):
    yaml = tmp_path / "bad.yaml"
    yaml.write_text(f'imports: [{DEBUG}]\nid: "{experiment_id}"\n')
    process = sandbox.experiment(yaml, check=False)
    words = [f"id: {experiment_id!r} is not allowed", "experiments/<id>"]
    assert_stopped_early(sandbox, process, words)
    assert "Traceback" not in process.stderr
    # Nothing written for it, inside the workspace or outside
    assert not (sandbox.workspace / "experiments").exists()
    assert not list(tmp_path.parent.rglob("escape"))
