"""Following the SLURM jobs while SLURM does not answer: the controller is
restarted, the accounting daemon (slurmdbd) is down, the configuration cannot
be read. See ``docs/launchers.md`` ("When SLURM stops answering").

Workaround for experimaestro 2.7.0, whose job watcher
(``SlurmProcessWatcher.run`` in ``experimaestro/launchers/slurm/base.py``)
runs ``sacct`` every poll with its error output going to the experiment's,
never looks at its exit status, and reads the empty output of a failed call
as "no job at all". Its commands are built by the launcher's connector:
:class:`PatientConnector` runs ``sacct`` and ``squeue`` itself, and when they
fail (or the controller does not answer ``scontrol ping``), it logs it once,
keeps the error output out of the terminal, and asks again at each poll until
SLURM answers; the watcher meanwhile keeps the states it last saw. And
since experimaestro's ``sacct`` call gives no start time (sacct then lists
the jobs of the current day only), a job that ended before midnight would
never be seen ended after an outage across midnight: the first call after
midnight looks back to before the last answer. Delete this module, and the
connector given in ``PatientSlurmLauncher``, once experimaestro reports a
failed poll, keeps the last states and asks ``sacct`` for a start time.

Imports nothing of this repository (the controller check comes as an
argument).
"""

import io
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from experimaestro.connectors import Process, RedirectType
from experimaestro.connectors.local import LocalConnector, LocalProcessBuilder

logger = logging.getLogger("xpm.launchers")

QUERIES = ("sacct", "squeue")
"""The commands of experimaestro's watcher that wait for SLURM to answer
(sbatch and scancel run as experimaestro runs them)"""

QUERY_TIMEOUT = 300
"""Seconds a ``sacct`` or ``squeue`` call may take before it counts as failed"""

LOOK_BACK = timedelta(minutes=10)
"""How long before its last answer ``sacct`` looks after midnight (margin
for clocks that differ between this machine and SLURM's)"""


def duration(seconds: float) -> str:
    """``42 s``, ``5 min 3 s``, ``2 h 05 min``"""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


class AnsweredQuery(Process):
    """A query that has already ended, returned to experimaestro's watcher
    (which reads its output, then kills it)"""

    def wait(self) -> int:
        return 0

    def kill(self):
        pass


class PatientConnector(LocalConnector):
    """This machine, where experimaestro's SLURM queries wait for SLURM

    :param interval: seconds between two tries while SLURM does not answer
        (the launcher's poll interval)
    :param report_every: seconds between two log lines saying that SLURM
        still does not answer
    :param controller: ``None`` when the SLURM controller answers, else what
        it said (called before each ``sacct``)
    """

    def __init__(
        self,
        interval: float,
        report_every: float,
        controller: Callable[[], str | None],
    ):
        super().__init__()
        self.interval = interval
        self.report_every = report_every
        self.controller = controller
        self.lock = threading.Lock()
        self.silent_since: float | None = None
        """When SLURM stopped answering (time.monotonic), None while it answers"""
        self.reported = 0.0
        """When the last line saying so was logged"""
        self.last_answer: datetime | None = None
        """When ``sacct`` last answered (this machine's clock)"""

    def processbuilder(self) -> LocalProcessBuilder:
        return PatientProcessBuilder(self)

    def query(self, command: list[str], env: dict | None) -> bytes:
        """The standard output of a SLURM query, once SLURM answers it"""
        sacct = os.path.basename(command[0]) == "sacct"
        while True:
            asked = datetime.now()
            problem = self.controller() if sacct else None
            if problem is None:
                full = self.looking_back(command, asked) if sacct else command
                output, problem = run_query(full, env)
            if problem is None:
                self.answered()
                if sacct:
                    self.last_answer = asked
                return output
            self.not_answered(problem)
            time.sleep(self.interval)

    def looking_back(self, command: list[str], now: datetime) -> list[str]:
        """sacct's command, with a start time before its last answer when that
        came before midnight (else sacct's default: the jobs of today)"""
        start = sacct_start(self.last_answer, now)
        if start is None or any(
            part.startswith(("-S", "--starttime")) for part in command
        ):
            return command
        return [*command, f"--starttime={start}"]

    def not_answered(self, problem: str):
        with self.lock:
            now = time.monotonic()
            if self.silent_since is None:
                self.silent_since = self.reported = now
                logger.warning(
                    "SLURM stopped answering (%s): the experiment keeps waiting"
                    " for it, asking again every %s; the jobs already submitted"
                    " go on in SLURM",
                    problem,
                    duration(self.interval),
                )
            elif now - self.reported >= self.report_every:
                self.reported = now
                logger.warning(
                    "SLURM has not answered for %s (%s): still waiting",
                    duration(now - self.silent_since),
                    problem,
                )

    def answered(self):
        with self.lock:
            if self.silent_since is not None:
                logger.info(
                    "SLURM answers again after %s: the experiment goes on",
                    duration(time.monotonic() - self.silent_since),
                )
                self.silent_since = None


def sacct_start(last_answer: datetime | None, now: datetime) -> str | None:
    """``--starttime`` for sacct when its last answer came before today's
    midnight (None otherwise: sacct's default, midnight, is enough)"""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if last_answer is None or last_answer - LOOK_BACK >= midnight:
        return None
    return (last_answer - LOOK_BACK).strftime("%Y-%m-%dT%H:%M:%S")


def run_query(command: list[str], env: dict | None) -> tuple[bytes, str | None]:
    """Runs a SLURM query: its standard output, and None or what went wrong"""
    name = os.path.basename(command[0])
    try:
        process = subprocess.run(
            command,
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=QUERY_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return b"", f"{name} gave no answer in {duration(QUERY_TIMEOUT)}"
    except OSError as error:
        return b"", f"{name} could not run: {error}"
    errors = process.stderr.decode(errors="replace").strip()
    if process.returncode == 0:
        if errors:
            logger.debug("%s said (and succeeded): %s", name, errors)
        return process.stdout, None
    # The last line says why, e.g. "sacct: error: Problem talking to the
    # database: Connection refused" (given without its "sacct: ")
    last = errors.splitlines()[-1].strip() if errors else "no message"
    last = last.removeprefix(f"{name}: ")
    return b"", f"{name} exited with status {process.returncode}: {last}"


class PatientProcessBuilder(LocalProcessBuilder):
    """Runs ``sacct`` and ``squeue`` (with their output read by the watcher)
    through :meth:`PatientConnector.query`; any other command as usual"""

    def __init__(self, connector: PatientConnector):
        super().__init__()
        self.connector = connector

    def start(self, task_mode: bool = False) -> Process:
        name = os.path.basename(str(self.command[0])) if self.command else ""
        if name not in QUERIES or self.stdout.type != RedirectType.PIPE:
            return super().start(task_mode)
        env = dict(self.environ) if self.environ else None
        output = self.connector.query([str(part) for part in self.command], env)
        self.stdout.function(io.BytesIO(output))
        return AnsweredQuery()
