"""``python -m xpkit.configure``: sets experimaestro up, never overwriting
what a user already has, and pointing into no checkout."""

import shutil
import subprocess

import yaml
from conftest import BIN, REPO, Sandbox

from xpkit.configure import LAUNCHERS_FILE

CONFIGURE = (
    "python -m xpkit.configure --workspace {workspace} --id mnist-xp"
    " --experiments 'MNIST_*'"
)


def test_fresh_home(sandbox):
    config = sandbox.home / ".config" / "experimaestro"
    settings = yaml.safe_load((config / "settings.yaml").read_text())
    assert settings["workspaces"] == [
        {"id": "mnist-xp", "path": str(sandbox.workspace), "triggers": ["MNIST_*"]}
    ]
    assert settings["carbon"] == {"enabled": False}
    assert settings["history"] == {"max_done": 100, "max_failed": 100}
    launchers = config / "launchers.py"
    assert not launchers.is_symlink() and launchers.read_text() == LAUNCHERS_FILE
    assert str(REPO) not in launchers.read_text()
    again = sandbox.run(CONFIGURE.format(workspace=sandbox.workspace))
    assert again.stdout.count("already set up") == 2, again.stdout


def test_existing_settings_are_merged(tmp_path):
    config = tmp_path / "home" / ".config" / "experimaestro"
    config.mkdir(parents=True)
    mine = "# my settings\nworkspaces:\n- id: mine\n  path: /data/xp\ncarbon:\n  enabled: true\n"
    (config / "settings.yaml").write_text(mine)
    Sandbox(tmp_path)
    settings = yaml.safe_load((config / "settings.yaml").read_text())
    assert [w["id"] for w in settings["workspaces"]] == ["mine", "mnist-xp"]
    assert settings["carbon"] == {"enabled": True}  # the user's choice is kept
    [backup] = config.glob("settings.yaml.*")
    assert backup.read_text() == mine


MY_LAUNCHERS = """\
# my launchers
from experimaestro.connectors.local import LocalConnector
from experimaestro.launchers.direct import DirectLauncher


def find_launcher(requirement, tags=()):
    return DirectLauncher(LocalConnector.instance())
"""


def test_existing_launchers_file_is_kept_and_the_quick_start_goes_on(tmp_path):
    """The quick start's chain (set-up && experiment) runs to the end"""
    config = tmp_path / "home" / ".config" / "experimaestro"
    config.mkdir(parents=True)
    (config / "launchers.py").write_text(MY_LAUNCHERS)
    sandbox = Sandbox(tmp_path)  # fails if the set-up exits with an error
    configure = CONFIGURE.format(workspace=sandbox.workspace)
    chain = sandbox.run(
        f"{configure} && experimaestro run-experiment tests/sample.yaml"
    )
    [line] = [line for line in chain.stdout.splitlines() if "launchers.py" in line]
    assert "yours, left alone" in line
    assert (config / "launchers.py").read_text() == MY_LAUNCHERS
    assert [job.name for job in sandbox.jobs("evaluate")], "no job ran"


def test_link_of_an_earlier_set_up_is_replaced(tmp_path):
    config = tmp_path / "home" / ".config" / "experimaestro"
    config.mkdir(parents=True)
    (config / "launchers.py").symlink_to(REPO / "launchers.py")
    Sandbox(tmp_path)
    launchers = config / "launchers.py"
    assert not launchers.is_symlink() and launchers.read_text() == LAUNCHERS_FILE


def test_renamed_copy_works_after_the_checkout_moved(tmp_path):
    """A copy of the layer and of the lesson, its package renamed, set up
    from its folder, keeps working once that folder has moved"""
    first = tmp_path / "first"
    first.mkdir()
    shutil.copytree(REPO / "xpkit", first / "xpkit")
    shutil.copytree(REPO / "mnist_xp", first / "digits_xp")
    for name in ("params.yaml", "debug.yaml"):
        text = (REPO / name).read_text().replace("mnist_xp.", "digits_xp.")
        (first / name).write_text(text)
    sample = (REPO / "tests" / "sample.yaml").read_text()
    (first / "sample.yaml").write_text(sample.replace("../debug.yaml", "debug.yaml"))
    sandbox = Sandbox(tmp_path / "sandbox")
    sandbox.env["PYTHONPATH"] = f"{first}:{sandbox.env.get('PYTHONPATH', '')}"
    sandbox.run(CONFIGURE.format(workspace=sandbox.workspace), cwd=first)

    moved = shutil.move(first, tmp_path / "moved")
    sandbox.env["PYTHONPATH"] = sandbox.env["PYTHONPATH"].replace(
        str(first), str(moved)
    )
    run = sandbox.run(
        [str(BIN / "experimaestro"), "run-experiment", "sample.yaml"], cwd=moved
    )
    assert "grid points, 1 done" in run.stdout, run.stdout
    [evaluate] = sorted((sandbox.workspace / "jobs").glob("digits_xp.learn.evaluate/*"))
    assert (evaluate / "results.json").is_file()
    where = subprocess.run(
        [str(BIN / "python"), "-c", "import xpkit, digits_xp; print(xpkit.__file__)"],
        env=sandbox.env,
        cwd=tmp_path,  # (a `python -c` imports from its folder first)
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(moved)), where


def test_the_readmes_set_up_names_the_workspace_after_its_folder(tmp_path):
    sandbox = Sandbox(tmp_path)
    config = sandbox.home / ".config" / "experimaestro"
    (config / "settings.yaml").unlink()
    command = "python -m xpkit.configure --workspace ~/experiments/mnist-xp --experiments 'MNIST_*'"
    assert f"\n{command}\n" in (REPO / "README.md").read_text()
    sandbox.run(command)
    settings = yaml.safe_load((config / "settings.yaml").read_text())
    [workspace] = settings["workspaces"]
    assert workspace == {
        "id": "mnist-xp",
        "path": str(sandbox.home / "experiments" / "mnist-xp"),
        "triggers": ["MNIST_*"],
    }


def test_without_xpkit_the_jobs_run_on_this_machine(sandbox):
    """The launchers.py written, in a Python where xpkit cannot be imported"""
    launchers = sandbox.home / ".config" / "experimaestro" / "launchers.py"
    script = (
        "import sys; sys.modules['xpkit'] = None  # import xpkit fails\n"
        f"exec(open({str(launchers)!r}).read())\n"
        "print(type(find_launcher('cpu(cores=1)')).__name__)\n"
    )
    process = sandbox.run([str(BIN / "python"), "-c", script])
    assert process.stdout.strip() == "DirectLauncher"
    assert "xpkit is not installed in this Python" in process.stderr
