"""``python -m xpkit.configure``: sets experimaestro up, never overwriting
what a user already has."""

import pytest
import yaml
from conftest import REPO, Sandbox


def test_fresh_home(sandbox):
    config = sandbox.home / ".config" / "experimaestro"
    settings = yaml.safe_load((config / "settings.yaml").read_text())
    assert settings["workspaces"] == [
        {"id": "mnist-xp", "path": str(sandbox.workspace), "triggers": ["MNIST_*"]}
    ]
    assert settings["carbon"] == {"enabled": False}
    assert (config / "launchers.py").resolve() == REPO / "launchers.py"
    again = sandbox.run("python -m xpkit.configure")
    assert "already set up" in again.stdout and "already linked" in again.stdout


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


def test_existing_launchers_file_is_kept(tmp_path):
    config = tmp_path / "home" / ".config" / "experimaestro"
    config.mkdir(parents=True)
    (config / "launchers.py").write_text("# my launchers\n")
    with pytest.raises(AssertionError, match="exists and is not a link"):
        Sandbox(tmp_path)  # the set-up command fails
    assert (config / "launchers.py").read_text() == "# my launchers\n"
