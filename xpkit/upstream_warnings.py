"""Warnings of experimaestro 2.7.0 that are not true of this project, kept
out of the experiment's log.

- ``In a future version, directory will be cleaned up for non-resumable tasks
  (mnist_xp.learn.evaluate)``: logged when the folder of a job that is not a
  ResumableTask exists as it starts, which is always the case for a job that
  waited for another: experimaestro writes the waiting job's status file in
  that folder itself. Evaluate writes its results only once it succeeded, so
  cleaning its folder before a new try will lose nothing.

Delete this module, and its call in experiment.py, once experimaestro warns
only about folders that hold more than its own files.
"""

import logging

UNTRUE = ("In a future version, directory will be cleaned up for non-resumable tasks",)
"""The beginnings of the messages to drop"""


class DropUntrueWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(UNTRUE)


def drop_untrue_warnings():
    """Drops the warnings of UNTRUE from experimaestro's scheduler log"""
    scheduler = logging.getLogger("xpm.scheduler")
    if not any(isinstance(f, DropUntrueWarnings) for f in scheduler.filters):
        scheduler.addFilter(DropUntrueWarnings())
