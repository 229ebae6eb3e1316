"""Sets experimaestro up for this tutorial, once per machine.

    python -m mnist_xp.configure [--workspace FOLDER]

In experimaestro's configuration folder (``~/.config/experimaestro``):

- ``settings.yaml`` gets a workspace ``mnist-xp`` (the folder where every
  job and experiment is stored) and turns carbon tracking off. An existing
  file is merged, never overwritten: what it already holds is kept, and a copy
  of the original is saved beside it.
- ``launchers.py`` becomes a link to this repository's ``launchers.py``, so
  that ``git pull`` updates it too. An existing file is never replaced.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import yaml

CONFIG_FOLDER = Path("~/.config/experimaestro").expanduser()
LAUNCHERS = Path(__file__).resolve().parent.parent / "launchers.py"
WORKSPACE_ID = "mnist-xp"


class SetupError(RuntimeError):
    """An existing file would have to be replaced: the user decides"""


def merge_settings(settings: dict, workspace: Path) -> list[str]:
    """Adds what the tutorial needs to experimaestro settings, in place

    :return: the changes made, in words (empty when there were none)
    """
    changes = []
    workspaces = settings.setdefault("workspaces", [])
    if not any(w.get("id") == WORKSPACE_ID for w in workspaces):
        # The first workspace is the default one: keep the user's in front, and
        # let ours be chosen for the tutorial's experiments by their id
        workspaces.append(
            {"id": WORKSPACE_ID, "path": str(workspace), "triggers": ["MNIST_*"]}
        )
        changes.append(f"added the workspace {WORKSPACE_ID} ({workspace})")
    if "carbon" not in settings:
        # Carbon tracking without codecarbon sleeps 3 s per job, and with it
        # looks the country up on the network, which compute nodes lack
        settings["carbon"] = {"enabled": False}
        changes.append("turned carbon tracking off")
    return changes


def write_settings(path: Path, workspace: Path):
    """Creates or merges ``settings.yaml``, keeping a copy of the original"""
    settings = yaml.safe_load(path.read_text()) if path.exists() else {}
    if not isinstance(settings or {}, dict):
        raise SetupError(f"{path} is not a YAML mapping: fix it or move it away")
    settings = settings or {}
    changes = merge_settings(settings, workspace)
    if not changes:
        print(f"{path}: already set up")
        return
    if path.exists():
        backup = path.with_name(f"settings.yaml.{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        print(f"{path}: original saved as {backup}")
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    print(f"{path}: {'; '.join(changes)}")


def link_launchers(path: Path):
    """Links ``launchers.py`` to the repository's copy, unless a file of the
    user's is already there"""
    if path.is_symlink() and path.resolve() == LAUNCHERS:
        print(f"{path}: already linked to {LAUNCHERS}")
        return
    if path.exists() or path.is_symlink():
        raise SetupError(
            f"{path} exists and is not a link to {LAUNCHERS}: experimaestro reads"
            " one launchers.py only. Merge the two find_launcher functions by hand,"
            " or move yours away and run this command again"
        )
    path.symlink_to(LAUNCHERS)
    print(f"{path}: linked to {LAUNCHERS}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workspace",
        type=Path,
        default=Path("~/experiments/mnist-xp"),
        help="folder for the jobs and experiments (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    CONFIG_FOLDER.mkdir(parents=True, exist_ok=True)
    try:
        write_settings(CONFIG_FOLDER / "settings.yaml", args.workspace.expanduser())
        link_launchers(CONFIG_FOLDER / "launchers.py")
    except SetupError as error:
        sys.exit(f"Set-up stopped: {error}")


if __name__ == "__main__":
    main()
