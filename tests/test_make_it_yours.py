"""The recipe of "Make it yours", followed literally in a temporary folder:
``xpkit/`` copied unchanged, beside it the 4 files a researcher writes for
another model and other data (``docs/make-it-yours``: a ResNet-18 on fake
CIFAR-10 images), experimaestro set up in a fresh HOME by the copy's ``python
-m xpkit.configure``, and the experiment run through the real ``experimaestro``
command: every job done, the table over the seeds, an exact resume after
SIGKILL, a misspelt key refused, the TensorBoard service and the export action.

What runs is the copy, never the repository's ``xpkit`` (installed editable in
the virtual environment): ``run-experiment`` and the jobs find it through the
YAML's ``pythonpath``, the commands that do not read the YAML through
``PYTHONPATH``.

``python tests/test_make_it_yours.py`` prints what the user writes (files and
lines)."""

import json
import re
import shutil
import signal
import statistics
from pathlib import Path

import pytest
import torch
from conftest import REPO, Sandbox, kill_at_first_checkpoint, started
from test_seeds import markdown_rows

from xpkit.seeds import STATISTICS

EXAMPLE = REPO / "docs" / "make-it-yours"
USER_FILES = (
    "cifar_xp/learn.py",
    "cifar_xp/data.py",
    "cifar_xp/experiment.py",
    "params.yaml",
)
"""What the user writes, relative to the project folder"""
USER_LINES = {
    name: len((EXAMPLE / name).read_text().splitlines()) for name in USER_FILES
}
"""Lines of each file the user writes (blank lines and comments included)"""
MAX_FILES, MAX_LINES = 4, 236
"""What the user writes at most, besides the copy of xpkit/"""

ID = "CIFAR_fake"
WORKSPACE_ID = "cifar-xp"  # the workspace folder's name
CONFIGURE = "python -m xpkit.configure --workspace {workspace} --experiments 'CIFAR_*'"
RUN = "experimaestro run-experiment params.yaml"
JOBS = f"experimaestro jobs --workspace {WORKSPACE_ID} list --tags --experiment {ID}"
SERVICES = f"experimaestro experiments --workspace {WORKSPACE_ID} services list {ID}"
ACTIONS = f"experimaestro experiments --workspace {WORKSPACE_ID} actions list {ID}"
EXPORT = (
    f"experimaestro experiments --workspace {WORKSPACE_ID} actions run {ID} {{action}}"
    " --set folder=best-model"
)
POINTS = [(lr, seed) for lr in (0.01, 0.001) for seed in (0, 1)]
"""The grid of params.yaml: (lr, seed)"""
ONE_POINT = "-c lr=0.01 -c seed=0"
"""The first point only (the run that is interrupted)"""
STEPS = 16
"""256 training images in batches of 32, 2 epochs"""


def xpkit_files(folder: Path) -> dict[str, bytes]:
    """The files of an ``xpkit`` folder (without Python's caches): path -> bytes"""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The user's project: a copy of xpkit/ and the 4 files, nothing else"""
    folder = tmp_path_factory.mktemp("my-project")
    shutil.copytree(
        REPO / "xpkit", folder / "xpkit", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in USER_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLE / name, folder / name)
    # Byte for byte: not one line of xpkit differs
    assert xpkit_files(folder / "xpkit") == xpkit_files(REPO / "xpkit")
    return folder


class ProjectSandbox(Sandbox):
    """A fresh HOME, set up by the project's copy of xpkit, where every
    command runs from the project folder, without PYTHONPATH"""

    def __init__(self, root: Path, project: Path):
        self.project = project
        super().__init__(root, mnist=root / "no-mnist")  # no MNIST test hooks
        for name in ("MNIST_XP_MIRROR", "PYTHONPATH"):
            self.env.pop(name, None)
        # The MNIST set-up made by Sandbox is replaced by the recipe's
        shutil.rmtree(self.home / ".config")
        self.workspace = root / WORKSPACE_ID
        self.configured = self.run(CONFIGURE.format(workspace=self.workspace))

    def run(self, command, *, cwd=None, **kwargs):
        return super().run(command, cwd=cwd or self.project, **kwargs)

    def jobs(self, task: str) -> list[Path]:
        return sorted((self.workspace / "jobs" / f"cifar_xp.learn.{task}").glob("*"))


@pytest.fixture(scope="module")
def trained(project, tmp_path_factory) -> ProjectSandbox:
    """params.yaml has run once: 4 Learn and 4 Evaluate jobs. Python says
    where it imports each module from (PYTHONVERBOSE, on stderr)"""
    sandbox = ProjectSandbox(tmp_path_factory.mktemp("trained"), project)
    sandbox.output = sandbox.run(f"PYTHONVERBOSE=1 {RUN}")
    return sandbox


def imported_from(verbose: str, package: str) -> set[str]:
    """The folders from which Python imported the modules of ``package``,
    read from its verbose output"""
    found = re.findall(rf"code object from '?(\S+/{package})/", verbose)
    return set(found)


def parameters(job: Path) -> dict:
    return torch.load(job / "parameters.pth", weights_only=True)


def test_the_user_writes_4_files(project):
    written = sorted(
        str(path.relative_to(EXAMPLE))
        for path in EXAMPLE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    assert written == sorted(USER_FILES)
    assert len(written) <= MAX_FILES
    assert sum(USER_LINES.values()) <= MAX_LINES, USER_LINES
    # The README states what the user writes, as counted here
    figures = f"**{len(written)} files, {sum(USER_LINES.values())} lines** written"
    assert figures in (REPO / "README.md").read_text()
    files = sorted(
        str(path.relative_to(project))
        for path in project.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    assert files == sorted(
        [*USER_FILES, *(f"xpkit/{n}" for n in xpkit_files(project / "xpkit"))]
    )


def test_the_copy_is_what_runs(trained, project, tmp_path):
    assert "find_launcher imported from xpkit.launchers" in trained.configured.stdout
    # The experiment (run-experiment, from the project folder)
    verbose = trained.output.stderr
    assert imported_from(verbose, "xpkit") == {str(project / "xpkit")}
    assert imported_from(verbose, "cifar_xp") == {str(project / "cifar_xp")}
    # The jobs: experimaestro 2.7 starts a local job without the experiment's
    # environment, but with the YAML's pythonpath first on its sys.path
    for job in [*trained.jobs("learn"), *trained.jobs("evaluate")]:
        [script] = job.glob("*.py")
        assert f"sys.path.insert(0, {str(project)!r})" in script.read_text()
    # The commands that do not read the YAML: PYTHONPATH
    where = trained.run(
        f"PYTHONPATH={project} python -c 'import xpkit; print(xpkit.__file__)'",
        cwd=tmp_path,
    )
    assert where.stdout.strip() == str(project / "xpkit" / "__init__.py")


def listed_jobs(sandbox: ProjectSandbox) -> list[tuple[str, str, str, float, int]]:
    """(state, task, job folder name, lr, seed) of each job of
    ``experimaestro jobs list``"""
    listing = sandbox.run(JOBS).stdout
    jobs = re.findall(
        r"^(\w+) +cifar_xp\.learn\.(\w+)/([0-9a-f]{64}) lr=(\S+) seed=(\d+)$",
        listing,
        re.MULTILINE,
    )
    return [(s, task, name, float(lr), int(seed)) for s, task, name, lr, seed in jobs]


def test_every_job_is_done(trained):
    jobs = listed_jobs(trained)
    assert sorted(
        (state, task, lr, seed) for state, task, _, lr, seed in jobs
    ) == sorted(
        ("DONE", task, lr, seed)
        for task in ("evaluate", "learn")
        for lr, seed in POINTS
    )
    for task in ("learn", "evaluate"):
        assert len(trained.jobs(task)) == 4
        assert all((job / f"{task}.done").is_file() for job in trained.jobs(task))


def test_the_results_give_mean_and_std_over_the_seeds(trained):
    out = trained.output.stdout
    assert f"{ID}, run " in out
    assert "2 grid points x 2 seeds (0, 1), 4 runs, 4 done, 0 failed" in out
    rows = markdown_rows(out)
    assert [list(row) for row in rows] == [
        ["lr", "n_seeds", *STATISTICS, "missing_seeds"]
    ] * 2
    accuracies = {}  # lr -> the test accuracies of its seeds
    for _, task, name, lr, _ in listed_jobs(trained):
        if task == "evaluate":
            job = trained.workspace / "jobs" / "cifar_xp.learn.evaluate" / name
            results = json.loads((job / "results.json").read_text())
            accuracies.setdefault(lr, []).append(results["accuracy"])
    assert sorted(accuracies) == [0.001, 0.01]
    for row in rows:
        seeds = accuracies[float(row["lr"])]
        assert row["n_seeds"] == "2" and row["missing_seeds"] == ""
        assert float(row["test_accuracy_mean"]) == round(statistics.mean(seeds), 4)
        assert float(row["test_accuracy_std"]) == round(statistics.stdev(seeds), 4)


def test_the_tensorboard_service_is_listed(trained):
    listing = trained.run(SERVICES).stdout
    # STOPPED even while it serves: an experimaestro 2.7.0 defect (see
    # test_services.py)
    assert re.search(
        r"^tensorboard +STOPPED +TensorBoard service", listing, re.MULTILINE
    )
    folder = trained.workspace / "experiments" / ID / "current" / "results"
    links = sorted(p.name for p in (folder / "tensorboard-service").glob("lr=*"))
    assert links == sorted(
        name
        for lr, seed in POINTS
        for name in (f"lr={lr}_seed={seed}", f"lr={lr}_seed={seed}.tags.json")
    )


def test_the_action_exports_the_best_model(trained, project, tmp_path):
    # experimaestro loads the action from its module: PYTHONPATH gives the copy
    env = f"PYTHONPATH={project} PYTHONVERBOSE=1"
    listing = trained.run(f"{env} {ACTIONS}", cwd=tmp_path)
    [action] = re.findall(
        rf"^  ([0-9a-f]{{64}}) Copy the best model of {ID} run \d+_\d+",
        listing.stdout,
        re.MULTILINE,
    )
    exported = trained.run(f"{env} {EXPORT.format(action=action)}", cwd=tmp_path)
    assert "Action completed successfully" in exported.stdout
    assert imported_from(exported.stderr, "xpkit") == {str(project / "xpkit")}
    copy = tmp_path / "best-model"
    description = json.loads((copy / "model.json").read_text())
    source = Path(description["source"])
    assert source.parent in trained.jobs("learn")
    assert (copy / "parameters.pth").read_bytes() == source.read_bytes()
    summaries = [
        json.loads((job / "learn.json").read_text()) for job in trained.jobs("learn")
    ]
    best = max(summary["validation_accuracy"] for summary in summaries)
    assert description["chosen_by"] == "validation_accuracy"
    assert description["metrics"]["validation_accuracy"] == best
    assert set(description["tags"]) == {"lr", "seed"}


def test_a_misspelt_key_stops_before_any_job(project, tmp_path):
    sandbox = ProjectSandbox(tmp_path, project)
    refused = sandbox.run(f"{RUN} -c lrr=0.1", check=False)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "lrr: unknown key (did you mean lr?)" in output, output[-3000:]
    assert "Traceback" not in output
    assert not (sandbox.workspace / "jobs").exists()


def test_a_killed_learn_job_resumes_to_the_same_model(trained, project, tmp_path):
    sandbox = ProjectSandbox(tmp_path, project)
    log = tmp_path / "interrupted.log"
    with started(sandbox, f"{RUN} {ONE_POINT}", log, cwd=project) as experiment:
        job = kill_at_first_checkpoint(sandbox, experiment, signal.SIGKILL)
        assert experiment.wait(timeout=120) != 0, log.read_text()[-3000:]
    assert not (job / "learn.done").exists()

    sandbox.run(f"{RUN} {ONE_POINT}")  # resubmits the failed job
    [step] = re.findall(
        r"Resuming from the checkpoint at step (\d+)", (job / "learn.err").read_text()
    )
    assert 0 < int(step) < STEPS
    # The same job (same identifier) as in the uninterrupted run
    uninterrupted = trained.workspace / "jobs" / "cifar_xp.learn.learn" / job.name
    assert uninterrupted in trained.jobs("learn")

    def validation(folder):
        summary = json.loads((folder / "learn.json").read_text())
        return {k: v for k, v in summary.items() if k.startswith("validation_")}

    assert validation(job) == validation(uninterrupted)
    resumed, reference = parameters(job), parameters(uninterrupted)
    assert resumed.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(resumed[name], tensor), f"{name} differs"


if __name__ == "__main__":
    for name, lines in USER_LINES.items():
        print(f"{name}: {lines} lines")
    print(f"{len(USER_FILES)} files, {sum(USER_LINES.values())} lines")
