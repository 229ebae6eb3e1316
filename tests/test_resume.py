"""Interrupted training resumes from its last checkpoint and ends with the
same parameters, bit for bit (on the CPU), as an uninterrupted run."""

import json
import re
import signal

import pytest
import torch
from conftest import REPO, Sandbox, kill_at_first_checkpoint

from xpkit.checkpoint import save_atomically

RESUME_YAML = REPO / "tests" / "resume.yaml"  # 10 epochs, a checkpoint every 50 steps
TOTAL_STEPS = 620  # 4,000 images / 64 per batch = 62 steps, 10 epochs


def parameters(sandbox: Sandbox) -> dict:
    [job] = sandbox.jobs("learn")
    return torch.load(job / "parameters.pth", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    sandbox = Sandbox(tmp_path_factory.mktemp("uninterrupted"))
    sandbox.experiment(RESUME_YAML)
    return parameters(sandbox)


def interrupt(sandbox: Sandbox, signum: int) -> int:
    """Starts the experiment, sends ``signum`` to the Learn job's process once
    its first checkpoint is written, and returns the experiment's exit status"""
    with sandbox.background_experiment(RESUME_YAML) as experiment:
        kill_at_first_checkpoint(sandbox, experiment, signum)
        return experiment.wait(timeout=120)


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"]
)
def test_killed_job_resumes(tmp_path, uninterrupted, signum):
    sandbox = Sandbox(tmp_path)
    status = interrupt(sandbox, signum)
    [job] = sandbox.jobs("learn")
    assert not (job / "learn.done").exists()
    assert status != 0, "the experiment did not report the failed job"

    sandbox.experiment(RESUME_YAML)  # the rerun resubmits the failed job
    log = (job / "learn.err").read_text()
    [step] = re.findall(r"Resuming from the checkpoint at step (\d+)", log)
    assert 0 < int(step) < TOTAL_STEPS
    assert json.loads((job / "learn.json").read_text())["steps"] == TOTAL_STEPS
    resumed = parameters(sandbox)
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), f"{name} differs"


def test_crash_while_writing_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pth"
    save_atomically({"step": 50}, path)

    def crash(content, file):  # writes half a file, then the machine "dies"
        with open(file, "wb") as fp:
            fp.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_atomically({"step": 100}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 50}


@pytest.mark.parametrize("damage", ["truncated", "not a checkpoint"])
def test_damaged_checkpoint_is_set_aside(tmp_path, uninterrupted, damage):
    """kill -9, then a damaged checkpoint.pth: the rerun sets it aside, says
    so in the job's log, and learns from the beginning to the same parameters"""
    sandbox = Sandbox(tmp_path)
    interrupt(sandbox, signal.SIGKILL)
    [job] = sandbox.jobs("learn")
    checkpoint = job / "checkpoint.pth"
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    else:
        torch.save([1, 2], checkpoint)
    sandbox.experiment(RESUME_YAML)
    log = (job / "learn.err").read_text()
    assert f"The checkpoint {checkpoint} cannot be read" in log
    assert "set aside as checkpoint.pth.damaged" in log
    assert (job / "checkpoint.pth.damaged").is_file()
    assert "Traceback" not in log
    resumed = parameters(sandbox)
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), f"{name} differs"


def test_done_job_whose_parameters_were_deleted(tmp_path, uninterrupted):
    """parameters.pth of a done Learn deleted: the rerun names the job and the
    command that redoes it, before any job; with it, the same parameters"""
    sandbox = Sandbox(tmp_path)
    sandbox.experiment(RESUME_YAML)
    [job] = sandbox.jobs("learn")
    (job / "parameters.pth").unlink()
    process = sandbox.experiment(RESUME_YAML, check=False)
    output = process.stdout + process.stderr
    assert process.returncode != 0
    assert f"{job} is done but its parameters.pth is gone" in output
    assert "Traceback" not in output
    [command] = re.findall(r"run `(rm [^`]+)`", output)
    assert command == f"rm {job / 'learn.done'}"
    sandbox.run(command)
    sandbox.experiment(RESUME_YAML)
    resumed = parameters(sandbox)
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), f"{name} differs"
