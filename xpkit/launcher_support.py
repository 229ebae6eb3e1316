"""The machinery behind :mod:`xpkit.launchers`: the environment variables
that choose and tune the launcher, asking SLURM whether it answers, turning a
requirement into sbatch options, the jobs' environment, a fix of
experimaestro's SLURM job scripts, and a SLURM launcher that waits while SLURM
does not answer (:mod:`xpkit.slurm_polling`). See ``docs/launchers.md``.

Imported by :mod:`xpkit.launchers`, and by :mod:`xpkit.checks`, which reads
the variables before any job is submitted.
"""

import logging
import math
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from experimaestro.exceptions import HandledException
from experimaestro.launcherfinder.parser import parse
from experimaestro.launcherfinder.specs import HostSimpleRequirement
from experimaestro.launchers import Launcher
from experimaestro.launchers.slurm import (
    SlurmLauncher,
    SlurmOptions,
    SlurmScriptBuilder,
)

from .slurm_polling import PatientConnector

logger = logging.getLogger("xpm.launchers")

LAUNCHER_VARIABLE = "XPKIT_LAUNCHER"
"""Environment variable forcing the launcher: auto, local or slurm"""

LAUNCHER_CHOICES = ("auto", "local", "slurm")

POLL_VARIABLE = "XPKIT_SLURM_POLL"
"""Environment variable: seconds between two ``sacct`` calls"""

REPORT_VARIABLE = "XPKIT_SLURM_REPORT"
"""Environment variable: seconds between two log lines saying that SLURM
still does not answer"""

REPORT_DEFAULT = 300
"""Seconds between two such lines when ``XPKIT_SLURM_REPORT`` is not set"""

PROBE_TIMEOUT = 10
"""Seconds ``scontrol ping`` may take before the controller counts as silent"""


class LauncherError(HandledException):
    """The launcher asked for cannot be used (shown without a traceback)"""


def launcher_choice() -> str:
    """The value of ``XPKIT_LAUNCHER`` (``auto`` when unset or empty)

    :raises LauncherError: for a value that is not auto, local or slurm
    """
    value = os.environ.get(LAUNCHER_VARIABLE, "").strip().lower() or "auto"
    if value not in LAUNCHER_CHOICES:
        raise LauncherError(
            f"{LAUNCHER_VARIABLE}={os.environ[LAUNCHER_VARIABLE]!r} is not"
            f" allowed: use one of {', '.join(LAUNCHER_CHOICES)} (default: auto)"
        )
    return value


def first_alternative(requirement) -> HostSimpleRequirement:
    """The first alternative of ``A | B`` (a string is parsed first)"""
    if isinstance(requirement, str):
        requirement = parse(requirement)
    if isinstance(requirement, HostSimpleRequirement):
        return requirement
    return requirement.requirements[0]


def set_job_environment(launcher: Launcher, cores: int):
    """Environment variables of the jobs, read before they import anything

    - OpenMP and MKL (PyTorch computes with them) get one thread per core of
      the job: more threads than cores make jobs side by side much slower;
    - glibc's allocator keeps the memory freed by one batch for the next one
      (blocks up to 32 MiB, trimmed beyond 1 GiB) instead of giving it back to
      the system and taking it back zeroed at every batch.
    """
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        launcher.setenv(variable, str(cores))
    launcher.setenv(
        "GLIBC_TUNABLES",
        f"glibc.malloc.mmap_threshold={32 << 20}:glibc.malloc.trim_threshold={1 << 30}",
    )


def local_cores(asked: int, total: int) -> int:
    """Cores of a local job that asks for ``asked`` cores (0: not said) on a
    machine with ``total``: as asked, but at most half of them, at least one"""
    return min(max(asked, 1), max(total // 2, 1))


def seconds_variable(variable: str, default: float, meaning: str) -> float:
    """A positive number of seconds read from an environment variable

    :param meaning: what the seconds are, for the message (``between ...``)
    :raises LauncherError: if the variable is set to something else
    """
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise LauncherError(
            f"{variable}={value!r} is not allowed: give a positive number"
            f" of seconds {meaning}"
        )
    return seconds


def poll_interval() -> float:
    """Seconds between two ``sacct`` calls: ``XPKIT_SLURM_POLL``, else
    experimaestro's default (60)

    :raises LauncherError: if the variable is not a positive number
    """
    default = SlurmLauncher.__init__.__kwdefaults__["interval"]
    return seconds_variable(POLL_VARIABLE, default, "between two sacct calls (e.g. 30)")


def report_interval() -> float:
    """Seconds between two log lines saying that SLURM still does not answer:
    ``XPKIT_SLURM_REPORT``, else 300

    :raises LauncherError: if the variable is not a positive number
    """
    meaning = "between two log lines saying that SLURM still does not answer"
    return seconds_variable(REPORT_VARIABLE, REPORT_DEFAULT, f"{meaning} (e.g. 300)")


def controller_problem() -> str | None:
    """None when the SLURM controller answers ``scontrol ping``, else what
    was tried and what it said"""
    probe = probe_slurm()
    return None if probe.answered else f"{probe.tried}: {probe.answer}"


@dataclass
class SlurmProbe:
    """What asking the SLURM controller gave"""

    answered: bool
    """True when a controller said it is UP"""

    tried: str
    """The command run (or why none could be), for messages"""

    answer: str
    """What it printed, or why it failed"""

    binpath: str = "/usr/bin"
    """Folder of the SLURM commands (sbatch, sacct, squeue...)"""

    installed: bool = True
    """False when the SLURM commands are not on PATH (not a cluster machine)"""

    @property
    def summary(self) -> str:
        """What was tried and answered, short enough for a line of a log"""
        if not self.installed:
            return "scontrol and sbatch are not on PATH"
        # The last line says it (scontrol's first ones are how it got there)
        last = self.answer.split("; ")[-1].removeprefix("scontrol: ")
        return f"scontrol ping: {last if len(last) <= 100 else last[:97] + '...'}"


def probe_slurm() -> SlurmProbe:
    """Asks the SLURM controller whether it is up, with ``scontrol ping``
    (the controller named in ``$SLURM_CONF``, else in /etc/slurm/slurm.conf)"""
    scontrol = shutil.which("scontrol")
    if scontrol is None or shutil.which("sbatch") is None:
        return SlurmProbe(
            False, "looking for scontrol and sbatch", "not on PATH", installed=False
        )
    binpath = os.path.dirname(shutil.which("sbatch"))
    config = os.environ.get("SLURM_CONF")
    tried = f"`{scontrol} ping` (SLURM_CONF={config or 'unset'})"
    if config and not os.path.isfile(config):
        # scontrol would retry for a minute before giving up
        return SlurmProbe(False, tried, f"{config} is not a file", binpath)
    try:
        process = subprocess.run(
            [scontrol, "ping"],
            check=False,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return SlurmProbe(False, tried, f"no answer in {PROBE_TIMEOUT} s", binpath)
    except OSError as error:
        return SlurmProbe(False, tried, str(error), binpath)
    # (without the banner of asterisks that comes with "DOWN")
    lines = (line.strip() for line in (process.stdout + process.stderr).split("\n"))
    answer = "; ".join(line for line in lines if line and not line.startswith("*"))
    if len(answer) > 500:
        answer = f"...{answer[-500:]}"
    # "Slurmctld(primary) at HOST is UP" (exit 0), "... is DOWN" (exit 1)
    answered = process.returncode == 0 and " is UP" in process.stdout
    if not answer:
        answer = f"nothing (exit status {process.returncode})"
    return SlurmProbe(answered, tried, answer, binpath)


def format_duration(seconds: int) -> str:
    """``--time`` value: hours:minutes:seconds, rounded up to whole minutes
    (SLURM counts whole minutes)"""
    minutes = math.ceil(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def slurm_options(requirement: HostSimpleRequirement) -> SlurmOptions:
    """The sbatch options that ask for what ``requirement`` needs (no partition,
    account or QOS: sbatch reads them from ``SBATCH_*`` variables)"""
    options = SlurmOptions(cpus_per_task=str(max(requirement.cpu.cores, 1)))
    if requirement.duration > 0:
        options.time = format_duration(requirement.duration)
    if requirement.cpu.memory > 0:
        options.mem = f"{math.ceil(requirement.cpu.memory / 2**20)}M"
    if requirement.accelerators:
        options.gpus_per_node = len(requirement.accelerators)
    return options


class ExportingScriptBuilder(SlurmScriptBuilder):
    """experimaestro's job script writer, with two fixes

    - The job's environment variables are exported by the shell script that
      sbatch runs: experimaestro sets them only once Python has started, too
      late for ``GLIBC_TUNABLES``, which glibc reads when a process starts.
    - Workaround for experimaestro 2.7.0, which caches ``job.python_path`` as
      an iterator, empty after the first script is written: a job submitted
      again (after a time limit) fails with ``No module named ...`` (the
      project's package). Dropping the cached value makes it be computed
      again. Delete the
      ``pop`` line once experimaestro caches a list.
    """

    def write(self, job):
        job.__dict__.pop("python_path", None)
        script = super().write(job)
        exports = "".join(
            f"export {name}={shlex.quote(value)}\n"
            for name, value in job.environ.items()
        )
        text = script.read_text()
        script.write_text(text.replace("\nsrun ", f"\n{exports}srun ", 1))
        return script


class PatientSlurmLauncher(SlurmLauncher):
    """experimaestro's SLURM launcher, with :class:`ExportingScriptBuilder`,
    whose job watcher waits, saying so in the log, while SLURM does not
    answer (workaround for experimaestro 2.7.0: see ``slurm_polling.py``)

    :raises LauncherError: if ``XPKIT_SLURM_REPORT`` is not a positive
        number
    """

    def __init__(self, *, options: SlurmOptions, interval: float, binpath: str):
        connector = PatientConnector(interval, report_interval(), controller_problem)
        super().__init__(
            connector=connector, options=options, interval=interval, binpath=binpath
        )

    def scriptbuilder(self):
        return ExportingScriptBuilder(self)
