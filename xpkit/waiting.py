"""Waiting for the jobs of a run: ``wait_for_jobs(xp)`` in place of
``xp.wait()``, which says in one line what Ctrl+C leaves behind.

On Ctrl+C, experimaestro 2.7 stops waiting and raises a ``KeyboardInterrupt``
whose traceback says nothing of the jobs. The jobs already started go on:
a local job runs in a session of its own (Ctrl+C does not reach it), a SLURM
job stays in SLURM's queue. Those not started yet (waiting for another job,
or for free cores) are not started. Running the experiment again follows
the running jobs to their end and starts the others.
"""

from experimaestro.exceptions import HandledException


class Stopped(HandledException):
    """The experiment was stopped (Ctrl+C) while its jobs ran"""


def wait_for_jobs(xp):
    """``xp.wait()``, raising :class:`Stopped` with one line on Ctrl+C

    :param xp: the running experiment (``helper.xp``)
    """
    try:
        xp.wait()
        return
    except KeyboardInterrupt:
        pass
    # Raised outside the except block: experimaestro 2.7 shows the error an
    # exception was raised during instead of its message
    raise Stopped(what_goes_on(xp.jobs.values()))


def in_words(number: int, one: str, several: str) -> str:
    """``1 job goes``, ``2 jobs go``: ``one`` or ``several``, after the number"""
    return f"1 {one}" if number == 1 else f"{number} {several}"


def what_goes_on(jobs) -> str:
    """What happens to ``jobs`` (experimaestro's) once the experiment stops,
    and what to do, in one line"""
    # Started: running, or submitted (to SLURM, or a local process starting)
    started = sum(job.state is not None and job.state.running() for job in jobs)
    waiting = sum(job.state is None or job.state.notstarted() for job in jobs)
    if not started + waiting:
        return (
            "Stopped (Ctrl+C) once every job had ended: run the same command"
            " again for the results (no job is run again)"
        )
    parts = [
        in_words(started, "started job goes on by itself", "started jobs go on"),
        in_words(waiting, "waiting job will not start", "waiting jobs will not start"),
    ]
    told = ", ".join(part for part in parts if not part.startswith("0 "))
    return (
        f"Stopped (Ctrl+C): {told}. Run the same command again (the same -c"
        " options too): it follows the started jobs to their end and starts the"
        " others (finished jobs are not run again)"
    )
