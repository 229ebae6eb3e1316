"""Test-only hook: with ``MNIST_XP_MD5SUMS`` set (to an ``md5sum``-style file),
``mnist_xp.mnist_files`` (or a renamed copy's) checks the files against those checksums instead of
the official ones, so that the small MNIST sample of ``tests/data`` passes.

Python imports this module at start-up when ``tests/hooks`` is on
``PYTHONPATH`` (the tests' ``Sandbox`` puts it there); the checksums are
replaced when ``mnist_xp.mnist_files`` is imported, without importing it first.

The jobs check their files too, so the hook must reach them: experimaestro
2.7 starts a local job with the launcher's variables only (``XPKIT_CORES``,
``OMP_NUM_THREADS``...), not with the experiment's environment, so the hook
adds its two variables to what a local job is started with. (A SLURM job gets
the whole environment of the experiment from sbatch.)
"""

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

HOOK_VARIABLES = ("PYTHONPATH", "MNIST_XP_MD5SUMS")
"""What a job needs to run this hook too"""


def sample_checksums() -> dict[str, str]:
    lines = Path(os.environ["MNIST_XP_MD5SUMS"]).read_text().split("\n")
    return {name: md5 for md5, name in (line.split() for line in lines if line)}


def use_sample_checksums(module):
    module.OFFICIAL_MD5.clear()
    module.OFFICIAL_MD5.update(sample_checksums())


def pass_hook_to_local_jobs(module):
    """Adds :data:`HOOK_VARIABLES` to the environment of the local processes
    that experimaestro starts with variables of their own (the jobs); those
    started without any inherit the whole environment already"""
    start = module.LocalProcessBuilder.start

    def start_with_hook(self, *args, **kwargs):
        if self.environ:
            hook = {name: os.environ[name] for name in HOOK_VARIABLES}
            self.environ = {**self.environ, **hook}
        return start(self, *args, **kwargs)

    module.LocalProcessBuilder.start = start_with_hook


PATCHES = {
    "mnist_files": use_sample_checksums,  # of mnist_xp, or of a renamed copy
    "experimaestro.connectors.local": pass_hook_to_local_jobs,
}
"""Module name (its last part, for a package's module) → what to change in it
once it is loaded"""


def patch_of(name: str):
    """The patch for module ``name``, if any"""
    last = name.rpartition(".")[2] if "." in name else None
    return PATCHES.get(name) or PATCHES.get(last)


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`PATCHES` as usual, and patches them once
    loaded"""

    def __init__(self):
        self.searching = set()

    def find_spec(self, name, path, target=None):
        patch = patch_of(name)
        if patch is None or name in self.searching:
            return None
        self.searching.add(name)  # let the usual finders find it
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.searching.discard(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


if all(os.environ.get(name) for name in HOOK_VARIABLES):
    sys.meta_path.insert(0, PatchOnImport())
