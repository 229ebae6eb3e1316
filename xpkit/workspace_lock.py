"""One experiment at a time in a workspace: :func:`wait_for_workspace`.

experimaestro 2.7 runs a job twice, or hangs for good, when two experiments of
one workspace that share jobs run at once: the second looks at a shared job
before taking its lock, and after taking it starts the job again without
looking anew (it deletes the first run's ``.done``); and a job's lock taken
before the cores (token) can cross a job process of the other experiment that
holds cores and waits for that job lock. Delete this module, and its calls,
once experimaestro checks a job's state under the job's lock.

The workspace lock is ``fcntl.flock`` on a file of the workspace: the system
releases it when the experiment's process ends, however it ends.
"""

import fcntl
import logging
import os
import socket
import time
from pathlib import Path

from experimaestro.exceptions import HandledException
from experimaestro.scheduler.workspace import RunMode

logger = logging.getLogger("xpkit.workspace_lock")

LOCK_NAME = "xpkit-experiment.lock"
"""The lock file, at the top of the workspace; it names the experiment that
holds it"""

_held = []
"""The open lock files: kept open (so locked) until the process ends"""


class WaitStopped(HandledException):
    """The experiment was stopped (Ctrl+C) while waiting for the workspace"""


def wait_for_workspace(xp, poll: float = 0.5):
    """Waits, saying so in one line, while another experiment runs in the
    workspace of ``xp``, then holds the workspace until this process ends

    :param xp: the running experiment (``helper.xp``)
    :raises WaitStopped: if the experiment is stopped (Ctrl+C) while waiting
    """
    if xp.workspace.run_mode != RunMode.NORMAL:
        return  # a dry run submits nothing
    path = Path(xp.workspace.path) / LOCK_NAME
    lock = path.open("a+")  # "a+": not emptied before it is locked
    said = False
    while not _try_lock(lock):
        if not said:
            logger.warning(
                "Waiting for experiment %s to end: it runs in this workspace (%s),"
                " where two experiments at once may run a shared job twice, or"
                " hang, with experimaestro 2.7",
                _holder(path),
                xp.workspace.path,
            )
            said = True
        interrupted = False
        try:
            time.sleep(poll)
        except KeyboardInterrupt:  # where experimaestro has no Ctrl+C handler
            interrupted = True
        if interrupted or xp.exitMode:  # experimaestro's Ctrl+C handler sets it
            lock.close()
            raise WaitStopped(
                f"stopped (Ctrl+C) while waiting for {_holder(path)} to end;"
                " nothing was submitted"
            )
    lock.truncate(0)
    lock.write(f"{xp.name} (process {os.getpid()} on {socket.gethostname()})\n")
    lock.flush()
    _held.append(lock)


def _try_lock(lock) -> bool:
    """Takes the lock if it is free; False if another process holds it"""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    """The experiment named in the lock file (it may not have written it yet)"""
    text = path.read_text().strip()
    return text or "another experiment"
