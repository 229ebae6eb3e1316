"""Test-only hook: with ``MNIST_XP_MD5SUMS`` set (to an ``md5sum``-style file),
``mnist_xp.mnist_files`` checks the files against those checksums instead of
the official ones, so that the small MNIST sample of ``tests/data`` passes.

Python imports this module at start-up when ``tests/hooks`` is on
``PYTHONPATH`` (the tests' ``Sandbox`` puts it there); the checksums are
replaced when ``mnist_xp.mnist_files`` is imported, without importing it first.
"""

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

MODULE = "mnist_xp.mnist_files"


def sample_checksums() -> dict[str, str]:
    lines = Path(os.environ["MNIST_XP_MD5SUMS"]).read_text().split("\n")
    return {name: md5 for md5, name in (line.split() for line in lines if line)}


class ReplaceChecksums(importlib.abc.MetaPathFinder):
    """Finds ``mnist_xp.mnist_files`` as usual, and patches it once loaded"""

    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)  # let the usual finders find it
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.OFFICIAL_MD5.clear()
            module.OFFICIAL_MD5.update(sample_checksums())

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("MNIST_XP_MD5SUMS"):
    sys.meta_path.insert(0, ReplaceChecksums())
