"""Getting a datamaestro dataset ready before any job is submitted, saying in
one line what stops it: ``prepare(dataset, name, expected)``.

datamaestro keeps its data in ``~/datamaestro`` (or ``$DATAMAESTRO_DIR``).
Preparing through it directly shows, for the mistakes a user makes, a chain
of tracebacks: a folder that cannot be written (read-only, or a file where
the folder should be), or a download that failed for a reason the dataset's
own code already put in words. This module turns them into one line; any
other error keeps datamaestro's traceback, which is then needed.
"""

import contextlib
import errno
import io
import logging
import os
import sys
from pathlib import Path

from datamaestro import prepare_dataset
from datamaestro.definitions import DownloadError
from experimaestro.exceptions import HandledException

FOLDER_VARIABLE = "DATAMAESTRO_DIR"
"""Environment variable naming datamaestro's folder (``~/datamaestro`` if unset)"""


class DataUnavailable(HandledException):
    """A dataset could not be made ready: the experiment stops before submitting"""


def data_folder(dataset) -> Path:
    """datamaestro's folder, where ``dataset`` is kept (under ``data/``)"""
    return dataset.__dataset__.context.datapath.parent


def folder_problem(error: OSError, root: Path) -> str | None:
    """What makes datamaestro's folder ``root`` unusable, read from ``error``
    (an error on a path under ``root``), else None"""
    if not error.filename or not Path(error.filename).is_relative_to(root):
        return None
    where = f"{FOLDER_VARIABLE}={root}" if os.environ.get(FOLDER_VARIABLE) else root
    # A file where a folder should be: name that file, not the path below it
    for path in (Path(error.filename), *Path(error.filename).parents):
        if path.exists() and not path.is_dir():
            return (
                f"datamaestro's folder {where} cannot be written ({path} is a file,"
                f" not a folder): set {FOLDER_VARIABLE} to a folder you can write"
            )
    todo = f"make it writable, or set {FOLDER_VARIABLE} to a folder you can write"
    if error.errno == errno.ENOSPC:
        todo = f"free some space, or set {FOLDER_VARIABLE} to a folder on another disk"
    return (
        f"datamaestro's folder {where} cannot be written ({error.strerror}:"
        f" {error.filename}): {todo}"
    )


class HeldRecords(logging.Filter):
    """Holds back the records of a logger (datamaestro logs a failed download
    as an error before raising it), to let them through later or not at all"""

    def __init__(self):
        super().__init__()
        self.records = []

    def filter(self, record):
        self.records.append(record)
        return False

    def release(self):
        """Lets the records held so far through (once the filter is removed)"""
        for record in self.records:
            logging.getLogger().handle(record)


def prepare(dataset, name: str, expected=()):
    """datamaestro's ``prepare_dataset(dataset, download=True)``, with one line
    for what stops it; a copy prepared earlier is read as it is, without
    writing anything

    Workaround for datamaestro 1.16.1, which takes a lock file in the
    dataset's folder even to find it complete, so that a read-only copy
    (e.g. one shared on a cluster) fails: drop the ``is_prepared`` test once
    ``prepare_dataset`` writes nothing for a complete copy.

    :param name: the dataset in words, e.g. ``"MNIST"``, for the messages
    :param expected: errors of the dataset's download (a class or a tuple)
        whose message says all: datamaestro's log line and traceback are
        then left out
    :raises DataUnavailable: ``NAME is not available: ...``
    """
    if dataset.__dataset__.is_prepared():
        return prepare_dataset(dataset, download=False)
    held, stderr, problem = HeldRecords(), io.StringIO(), None
    logging.getLogger().addFilter(held)  # datamaestro logs on the root logger
    try:
        with contextlib.redirect_stderr(stderr):  # and prints tracebacks
            return prepare_dataset(dataset, download=True)
    except (DownloadError, OSError) as error:
        problem = download_problem(error, data_folder(dataset), expected)
        if problem is None:
            raise
    finally:
        logging.getLogger().removeFilter(held)
        if problem is None:  # success, or an unexpected error: show it all
            held.release()
            sys.stderr.write(stderr.getvalue())
    # Raised outside the except block: experimaestro 2.7 shows the error an
    # exception was raised during, even with "from None", instead of its
    # message (raise it in the except block once experimaestro honours that)
    raise DataUnavailable(f"{name} is not available: {problem}")


def download_problem(error: Exception, root: Path, expected) -> str | None:
    """The message of an ``expected`` error or of an error of datamaestro's
    folder ``root``, raised or behind datamaestro's DownloadError; else None"""
    cause = error.__cause__ if isinstance(error, DownloadError) else error
    if isinstance(cause, expected):
        return str(cause)
    if isinstance(cause, OSError):
        return folder_problem(cause, root)
    return None
