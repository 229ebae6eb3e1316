"""Warnings of experimaestro 2.7.0 that are not true of an experiment whose
plain tasks write their files only once they succeeded, kept out of the
experiment's log.

- ``In a future version, directory will be cleaned up for non-resumable tasks
  (<task id>)``: logged when the folder of a job that is not a ResumableTask
  exists as it starts, which is always the case for a job that waited for
  another: experimaestro writes the waiting job's status file in that folder
  itself. A task such as the evaluating one, which writes its results only
  once it succeeded, loses nothing when its folder is cleaned before a new
  try.

Delete this module, and its call in the experiment, once experimaestro warns
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
