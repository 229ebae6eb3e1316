"""Sets experimaestro up for a project, once per machine.

    python -m xpkit.configure --workspace FOLDER [--id ID] [--experiments PATTERN]

In experimaestro's configuration folder (``~/.config/experimaestro``):

- ``settings.yaml`` gets a workspace (the folder where every job and
  experiment is stored), named ``ID`` (by default the folder's name), used for
  the experiments whose id matches ``PATTERN`` (e.g. ``MY_*``), and carbon
  tracking is turned off. An existing file is merged, never overwritten: what
  it already holds is kept, and a copy of the original is saved beside it.
- ``launchers.py`` gets one import, ``from xpkit.launchers import
  find_launcher``: the launchers of the ``xpkit`` installed in the Python that
  runs the experiment, whichever project it comes with (nothing points into
  the folder this command ran from). A ``launchers.py`` of the user's is left
  alone, with one line saying so.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import yaml

CONFIG_FOLDER = Path("~/.config/experimaestro").expanduser()

LAUNCHERS_FILE = '''\
"""Where experimaestro runs the jobs (written by ``python -m xpkit.configure``):
the launchers of the xpkit installed with the project being run."""

try:
    from xpkit.launchers import find_launcher
except ImportError:  # no xpkit in this Python: run the jobs on this machine
    import logging

    from experimaestro.connectors.local import LocalConnector
    from experimaestro.launchers.direct import DirectLauncher

    def find_launcher(requirement, tags=()):
        logging.getLogger("xpm.launchers").warning(
            "xpkit is not installed in this Python: the jobs run on this machine"
        )
        return DirectLauncher(LocalConnector.instance())
'''
"""What ``launchers.py`` holds once set up"""


KEPT_RUNS = 100
"""Runs of an experiment that the workspace keeps (experimaestro's default is 5)"""


class SetupError(RuntimeError):
    """A file cannot be read as experimaestro settings: the user decides"""


def merge_settings(
    settings: dict, workspace_id: str, workspace: Path, pattern: str | None
) -> list[str]:
    """Adds the workspace (and turns carbon tracking off) in experimaestro's
    settings, in place

    :return: the changes made, in words (empty when there were none)
    """
    changes = []
    workspaces = settings.setdefault("workspaces", [])
    if not any(w.get("id") == workspace_id for w in workspaces):
        # The first workspace is the default one: keep the user's in front;
        # the trigger gives ours to the experiments whose id matches
        entry = {"id": workspace_id, "path": str(workspace)}
        if pattern:
            entry["triggers"] = [pattern]
        workspaces.append(entry)
        changes.append(f"added the workspace {workspace_id} ({workspace})")
    if "history" not in settings:
        # experimaestro keeps 5 runs of an experiment and deletes the older
        # run folders, their results included. (A workspace's own `history`
        # is not read by run-experiment in experimaestro 2.7.0: set globally)
        settings["history"] = {"max_done": KEPT_RUNS, "max_failed": KEPT_RUNS}
        changes.append(f"kept the last {KEPT_RUNS} runs of each experiment")
    if "carbon" not in settings:
        # Carbon tracking without codecarbon sleeps 3 s per job, and with it
        # looks the country up on the network, which compute nodes lack
        settings["carbon"] = {"enabled": False}
        changes.append("turned carbon tracking off")
    return changes


def write_settings(path: Path, workspace_id: str, workspace: Path, pattern):
    """Creates or merges ``settings.yaml``, keeping a copy of the original"""
    settings = yaml.safe_load(path.read_text()) if path.exists() else {}
    if not isinstance(settings or {}, dict):
        raise SetupError(f"{path} is not a YAML mapping: fix it or move it away")
    settings = settings or {}
    changes = merge_settings(settings, workspace_id, workspace, pattern)
    if not changes:
        print(f"{path}: already set up")
        return
    if path.exists():
        backup = path.with_name(f"settings.yaml.{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        print(f"{path}: original saved as {backup}")
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    print(f"{path}: {'; '.join(changes)}")


def write_launchers(path: Path):
    """Writes :data:`LAUNCHERS_FILE`, unless a file of the user's is there; a
    symbolic link (how earlier set-ups pointed into a checkout) is replaced"""
    if path.is_file() and not path.is_symlink():
        if path.read_text() == LAUNCHERS_FILE:
            print(f"{path}: already set up")
        else:
            print(
                f"{path}: yours, left alone (experimaestro reads this one file:"
                " to use xpkit's launchers, add `from xpkit.launchers import"
                " find_launcher` to it, or move it away and run this again)"
            )
        return
    if path.is_symlink():
        path.unlink()  # an earlier set-up's link into a checkout
    path.write_text(LAUNCHERS_FILE)
    print(f"{path}: find_launcher imported from xpkit.launchers")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m xpkit.configure", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        required=True,
        help="folder for the jobs and experiments, e.g. ~/experiments/my-project",
    )
    parser.add_argument("--id", help="the workspace's id (default: the folder's name)")
    parser.add_argument(
        "--experiments",
        metavar="PATTERN",
        help="experiment ids that go to this workspace, e.g. 'MY_*'",
    )
    args = parser.parse_args(argv)
    workspace = args.workspace.expanduser()
    CONFIG_FOLDER.mkdir(parents=True, exist_ok=True)
    try:
        write_settings(
            CONFIG_FOLDER / "settings.yaml",
            args.id or workspace.name,
            workspace,
            args.experiments,
        )
        write_launchers(CONFIG_FOLDER / "launchers.py")
    except SetupError as error:
        sys.exit(f"Set-up stopped: {error}")


if __name__ == "__main__":
    main()
