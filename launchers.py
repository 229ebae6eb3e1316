"""Where experimaestro runs the jobs: this machine, or SLURM when a
controller answers. The code is the generic layer's (``xpkit/launchers.py``);
``python -m xpkit.configure`` writes the same import in
``~/.config/experimaestro/launchers.py``, where experimaestro reads it.
"""

from xpkit.launchers import find_launcher

__all__ = ["find_launcher"]
