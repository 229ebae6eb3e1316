"""Damaged data and a full disk, through the real ``experimaestro`` command:
the prepared copy of MNIST is checked at every run and repaired, a job checks
what it reads, a bad ``.gz`` in the mirror is named, and a job that runs out
of disk space says so in one line, then resumes once there is space again."""

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, SAMPLE, SAMPLE_YAML, Sandbox

from xpkit.checkpoint import save_atomically

SAMPLE_MD5 = {
    name: checksum
    for checksum, name in map(str.split, (SAMPLE / "MD5SUMS").read_text().splitlines())
}
"""The checksums of the sample's uncompressed IDX files, by name"""


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def prepare(sandbox: Sandbox) -> Path:
    """Gets MNIST ready without running a job (a dry run submits nothing),
    and returns the folder of the IDX files in datamaestro's copy"""
    sandbox.experiment(SAMPLE_YAML, "--run-mode", "dry_run")
    [folder] = sandbox.home.glob("datamaestro/**/MNIST/raw")
    return folder


def flip_a_byte(path: Path):
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def output(process) -> str:
    return process.stdout + process.stderr


def assert_stopped_before_submitting(sandbox: Sandbox, process, message: str):
    """The experiment failed saying ``message`` once, without a traceback,
    before submitting any job"""
    assert process.returncode != 0
    assert output(process).count(message) == 1, output(process)[-3000:]
    assert "Traceback" not in output(process)
    assert not (sandbox.workspace / "jobs").exists(), "a job was submitted"


def test_missing_and_truncated_files_are_repaired(sandbox):
    raw = prepare(sandbox)
    missing, truncated = raw / "t10k-labels-idx1-ubyte", raw / "train-labels-idx1-ubyte"
    missing.unlink()
    truncated.write_bytes(truncated.read_bytes()[:100])
    damaged_md5 = md5(truncated)

    process = sandbox.experiment(SAMPLE_YAML, "--run-mode", "dry_run")
    repaired = re.findall(r"Repaired (\S+) \((.*?)\) from (\S+)\n", process.stderr)
    assert sorted(repaired) == [
        (str(missing), "missing", str(SAMPLE)),
        (
            str(truncated),
            f"MD5 {damaged_md5} differs from the expected {SAMPLE_MD5[truncated.name]}",
            str(SAMPLE),
        ),
    ]
    for name, checksum in SAMPLE_MD5.items():
        assert md5(raw / name) == checksum, f"{name} was not repaired"


def test_damaged_copy_without_a_source_stops_the_experiment(sandbox, tmp_path):
    raw = prepare(sandbox)
    damaged = raw / "train-images-idx3-ubyte"
    flip_a_byte(damaged)
    nowhere = tmp_path / "nowhere"
    sandbox.env["MNIST_XP_MIRROR"] = str(nowhere)

    process = sandbox.experiment(SAMPLE_YAML, check=False)
    assert_stopped_before_submitting(
        sandbox,
        process,
        "Experiment failed: MNIST is not available: the prepared copy is damaged"
        f" ({damaged}: MD5 {md5(damaged)} differs from the expected"
        f" {SAMPLE_MD5[damaged.name]}) and could not be fetched again:"
        f" MNIST_XP_MIRROR={nowhere} is not a folder",
    )


def test_file_damaged_after_submission_fails_its_job(sandbox):
    """A job checks the files it reads: here the copy is damaged once the
    experiment has checked it and written the jobs (``generate_only``), and
    the Learn job is then started by its own script, as a launcher would"""
    sandbox.experiment(SAMPLE_YAML, "--run-mode", "generate_only")
    [damaged] = sandbox.home.glob("datamaestro/**/MNIST/raw/train-images-idx3-ubyte")
    flip_a_byte(damaged)
    [job] = sandbox.jobs("learn")

    process = sandbox.run([sys.executable, job / "learn.py"], cwd=job, check=False)
    assert process.returncode != 0
    assert f"{damaged} changed after the experiment checked it (MD5" in output(process)
    assert (job / "learn.failed").exists()
    assert not (job / "learn.done").exists()
    assert not (job / "parameters.pth").exists(), "trained on damaged data"

    # A new run repairs the file before submitting, and the job trains on it
    process = sandbox.experiment(SAMPLE_YAML)
    assert process.stderr.count(f"Repaired {damaged} (MD5 ") == 1, process.stderr
    assert md5(damaged) == SAMPLE_MD5[damaged.name]
    assert (job / "learn.done").exists()
    assert sandbox.results()[0]["n_images"] == 1000


@pytest.mark.parametrize("damage", ["truncated", "not gzipped"])
def test_bad_gz_in_the_mirror_is_named(sandbox, tmp_path, damage):
    mirror = tmp_path / "mirror"
    shutil.copytree(SAMPLE, mirror)
    sandbox.env["MNIST_XP_MIRROR"] = str(mirror)
    path = mirror / "train-images-idx3-ubyte.gz"
    content = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(content[: len(content) // 2])
    else:  # e.g. the error page of a web server, saved under the file's name
        path.write_text("<html><body>404 Not Found</body></html>\n")

    process = sandbox.experiment(SAMPLE_YAML, check=False)
    assert_stopped_before_submitting(
        sandbox,
        process,
        f"Experiment failed: MNIST is not available: {path} is truncated or not a"
        " gzip file (",
    )
    assert "replace it with an original copy" in process.stderr
    # datamaestro's own line about the failed download is not shown
    assert "Could not download resource" not in output(process)


@contextlib.contextmanager
def read_only(folder: Path):
    """Makes ``folder`` read-only, by mounting it on itself (root only: root
    writes whatever the permissions say)"""
    folder.mkdir(parents=True, exist_ok=True)
    for options in (["--bind"], ["-o", "remount,ro,bind"]):
        mount = subprocess.run(
            ["mount", *options, str(folder), str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mount.returncode != 0:
            if options != ["--bind"]:
                subprocess.run(["umount", str(folder)], check=True)
            pytest.skip(f"cannot mount a folder read-only: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_read_only_data_folder(sandbox):
    """A data folder that cannot be written is named before any job; once
    prepared, a read-only copy (one shared on a cluster) is read as it is"""
    folder = sandbox.home / "datamaestro"
    with read_only(folder):
        process = sandbox.experiment(SAMPLE_YAML, check=False)
    assert_stopped_before_submitting(
        sandbox,
        process,
        f"Experiment failed: MNIST is not available: datamaestro's folder {folder}"
        f" cannot be written (Read-only file system: {folder}/data): make it"
        " writable, or set DATAMAESTRO_DIR to a folder you can write",
    )

    # Writable again: MNIST is prepared; a file damaged since cannot be
    # repaired in the read-only copy, and the folder is named
    damaged = prepare(sandbox) / "train-images-idx3-ubyte"
    flip_a_byte(damaged)
    with read_only(folder):
        process = sandbox.experiment(SAMPLE_YAML, check=False)
    assert_stopped_before_submitting(
        sandbox,
        process,
        f"Experiment failed: MNIST is not available: the prepared copy is damaged"
        f" ({damaged}: MD5 {md5(damaged)} differs from the expected"
        f" {SAMPLE_MD5[damaged.name]}) and could not be fetched again:"
        f" datamaestro's folder {folder} cannot be written (Read-only file system:",
    )

    prepare(sandbox)  # writable again: repaired
    with read_only(folder):  # a complete copy is read as it is
        sandbox.experiment(SAMPLE_YAML)
    assert sandbox.results()[0]["n_images"] == 1000


def test_data_folder_that_is_a_file(sandbox, tmp_path):
    file = tmp_path / "datamaestro"
    file.write_text("not a folder\n")
    sandbox.env["DATAMAESTRO_DIR"] = str(file)
    process = sandbox.experiment(SAMPLE_YAML, check=False)
    assert_stopped_before_submitting(
        sandbox,
        process,
        "Experiment failed: MNIST is not available: datamaestro's folder"
        f" DATAMAESTRO_DIR={file} cannot be written ({file} is a file, not a"
        " folder): set DATAMAESTRO_DIR to a folder you can write",
    )

    file.unlink()  # a folder there now: the rerun prepares MNIST and runs
    sandbox.experiment(SAMPLE_YAML)
    assert list(file.glob("data/**/MNIST/raw/train-images-idx3-ubyte"))
    assert sandbox.results()[0]["n_images"] == 1000


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """Mounts a tmpfs of ``size`` (e.g. ``"1m"``) on ``folder`` (root only)"""
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root only): {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


FULL_DISK_YAML = """\
imports: [{resume}]
id: MNIST_full_disk
# The checkpoints' size depends on the model: 200 KB for this one
n_layers: [1]
hidden_dim: [8]
kernel_size: [3]
"""
"""The resume experiment (a checkpoint every 50 steps), its model pinned"""


def test_full_disk_fails_the_job_in_one_line_then_resumes(sandbox, tmp_path):
    yaml = tmp_path / "full_disk.yaml"
    yaml.write_text(FULL_DISK_YAML.format(resume=REPO / "tests" / "resume.yaml"))
    with small_disk(sandbox.workspace / "jobs", "1m") as jobs:
        # Room for the job's files and one checkpoint, not for the second:
        # a checkpoint is written next to the previous one, then renamed
        ballast = jobs / "ballast"
        ballast.write_bytes(bytes(shutil.disk_usage(jobs).free - (320 << 10)))

        process = sandbox.experiment(yaml, check=False)
        assert process.returncode != 0
        [job] = sandbox.jobs("learn")
        checkpoint = job / "checkpoint.pth"
        assert f"{job}/learn.err" in process.stderr  # the failed point's log
        log = (job / "learn.err").read_text()
        [line] = [line for line in log.splitlines() if "No space left" in line]
        assert re.search(
            rf"ERROR:.* No space left to write {checkpoint} \(\d+\.\d KiB free on"
            r" its disk\): free some space, then run the experiment again",
            line,
        ), line
        assert "Traceback" not in log
        assert (job / "learn.failed").exists()
        assert not (job / "learn.done").exists()
        assert not list(job.glob("*.tmp")), "the partial checkpoint was kept"
        step = torch.load(checkpoint, weights_only=True)["step"]
        assert step == 50  # the previous checkpoint is whole

        ballast.unlink()  # space again: the job resumes from that checkpoint
        sandbox.experiment(yaml)
        log = (job / "learn.err").read_text()
        assert "Resuming from the checkpoint at step 50" in log
        assert (job / "learn.done").exists()
        assert sandbox.results()[0]["n_images"] == 1000


@pytest.mark.parametrize("content", ["text", "tensors"])
def test_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path, caplog, content):
    """What a job does when its parameters or results do not fit"""
    small, large = ('{"accuracy": 0.9}', "x" * (64 << 10))
    if content == "tensors":
        small, large = {"w": torch.zeros(10)}, {"w": torch.zeros(16 << 10)}
    with small_disk(tmp_path / "disk", "32k") as disk:
        path = disk / "results"
        save_atomically(small, path)
        before = path.read_bytes()
        with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stop:
            save_atomically(large, path)
        assert stop.value.code == 1
        [record] = caplog.records
        assert record.getMessage().startswith(f"No space left to write {path} (")
        assert "KiB free on its disk" in record.getMessage()
        assert path.read_bytes() == before
        assert os.listdir(disk) == ["results"]


def test_full_disk_for_the_results_is_one_line(sandbox, tmp_path):
    sandbox.experiment(SAMPLE_YAML)
    analyze = [sys.executable, "-m", "xpkit.analyze", "--output"]
    with small_disk(tmp_path / "disk", "1m") as disk:
        ballast = disk / "ballast"
        ballast.write_bytes(bytes(shutil.disk_usage(disk).free - (4 << 10)))
        process = sandbox.run([*analyze, disk / "results"], check=False)
        assert process.returncode == 1
        assert "Traceback" not in output(process)
        assert re.search(
            rf"^Analysis stopped: No space left to write the results into {disk}/"
            r"results \(\d+ KiB free on its disk\): free some space, then run"
            r" `python -m xpkit.analyze`$",
            process.stderr,
            re.MULTILINE,
        ), process.stderr
        assert "| DONE " in process.stdout  # the table, printed all the same

        ballast.unlink()
        sandbox.run([*analyze, disk / "results"])
        assert (disk / "results" / "results.csv").read_text().count("DONE") == 2
