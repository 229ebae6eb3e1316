"""Getting the four MNIST files: from a local mirror or the Internet, checked
against their official MD5, before any job is submitted.

Offline machines (cluster nodes often are) take the files from the folder
named by ``MNIST_XP_MIRROR`` (the four IDX files, gzipped or not). The copy
that datamaestro keeps is checked again at every run, and repaired when it
has changed; each job checks the two files it reads. See
``docs/troubleshooting.md`` for what each error means.
"""

import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import zlib
from pathlib import Path

from xpkit.datasets import DataUnavailable, data_folder, folder_problem, prepare

logger = logging.getLogger(__name__)

MIRROR_VARIABLE = "MNIST_XP_MIRROR"
"""Environment variable naming a local folder with the four IDX files"""

OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""MD5 of each uncompressed IDX file, as published with MNIST"""


class DatasetError(RuntimeError):
    """The MNIST files are missing, incomplete or corrupted"""


def md5sum(path: Path) -> str:
    """MD5 of a file, in hexadecimal"""
    digest = hashlib.md5()
    with path.open("rb") as fp:
        while chunk := fp.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def copy_from_mirror(mirror: Path, destination: Path, names=None):
    """Copies IDX files (``names``, all four by default) from a local folder,
    uncompressing ``.gz`` ones

    :raises DatasetError: if the folder or one of the files is missing, or a
        ``.gz`` file is truncated or not gzipped
    """
    if not mirror.is_dir():
        raise DatasetError(
            f"{MIRROR_VARIABLE}={mirror} is not a folder: set it to a folder"
            " holding the four MNIST IDX files (gzipped or not)"
        )
    for name in names or OFFICIAL_MD5:
        if (mirror / name).is_file():
            shutil.copyfile(mirror / name, destination / name)
        elif (mirror / f"{name}.gz").is_file():
            gunzip(mirror / f"{name}.gz", destination / name)
        else:
            raise DatasetError(
                f"{mirror} has neither {name} nor {name}.gz: copy the four MNIST"
                f" IDX files there, or unset {MIRROR_VARIABLE} to download them"
            )


def gunzip(source: Path, destination: Path):
    """Uncompresses ``source`` into ``destination``

    :raises DatasetError: naming ``source`` when it is truncated or not gzipped
    """
    try:
        with gzip.open(source, "rb") as packed, destination.open("wb") as copy:
            shutil.copyfileobj(packed, copy)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DatasetError(
            f"{source} is truncated or not a gzip file ({error}): replace it"
            " with an original copy"
        ) from None


def download_from_internet(destination: Path):
    """Downloads the IDX files with torchvision (which tries several mirrors)

    :raises DatasetError: when no mirror answers (e.g. no network)
    """
    from torchvision.datasets import MNIST

    root = destination / "download"
    try:
        for train in (True, False):
            MNIST(root, train=train, download=True)
    except Exception as error:
        # torchvision gives a line per mirror tried: one line here
        tried = " ".join(str(error).split())
        raise DatasetError(
            f"Could not download MNIST ({tried}). On a machine without network,"
            f" set {MIRROR_VARIABLE} to a folder holding the four IDX files"
        ) from error
    for name in OFFICIAL_MD5:
        shutil.move(root / "MNIST" / "raw" / name, destination / name)
    shutil.rmtree(root)


def idx_folder(root: Path) -> Path:
    """The folder of the four IDX files under ``root``, in torchvision's layout"""
    return root / "MNIST" / "raw"


def file_problem(path: Path, md5: str) -> str | None:
    """What is wrong with one IDX file (missing, or another MD5), else None"""
    if not path.is_file():
        return "missing"
    if (actual := md5sum(path)) != md5:
        return f"MD5 {actual} differs from the expected {md5}"
    return None


def verify_checksums(folder: Path, names=None, origin=None):
    """Checks IDX files (``names``, all four by default) in ``folder`` against
    their MD5

    :param origin: where the files were copied from (a folder), for the message
    :raises DatasetError: naming the first file whose checksum differs
    """
    for name in names or OFFICIAL_MD5:
        if problem := file_problem(folder / name, OFFICIAL_MD5[name]):
            source = f" (copied from {origin})" if origin else ""
            raise DatasetError(
                f"{name}{source}: {problem}; the file is truncated or corrupted:"
                " replace it with an original copy"
            )


def fetch_mnist(raw: Path, names=None):
    """Puts checked IDX files (``names``, all four by default) in ``raw``:
    from ``MNIST_XP_MIRROR`` when it is set, else from the Internet"""
    raw.mkdir(parents=True, exist_ok=True)
    if mirror := os.environ.get(MIRROR_VARIABLE):
        logger.info("Copying MNIST from %s", mirror)
        copy_from_mirror(Path(mirror), raw, names)
    else:
        logger.info("Downloading MNIST")
        download_from_internet(raw)
    verify_checksums(raw, names, origin=mirror)


def repair_mnist(raw: Path, data_folder: Path):
    """Checks the prepared IDX files in ``raw`` (datamaestro takes a folder
    that exists as complete), and fetches again those that changed

    :param data_folder: datamaestro's folder, that ``raw`` lies in
    :raises DataUnavailable: naming the file that could not be repaired
    """
    damaged = {}
    for name, md5 in OFFICIAL_MD5.items():
        if problem := file_problem(raw / name, md5):
            damaged[name] = problem
    if not damaged:
        return
    try:
        fetch_again(raw, damaged)
        return
    except DatasetError as error:
        failure = str(error)
    except OSError as error:  # e.g. a read-only copy
        if (failure := folder_problem(error, data_folder)) is None:
            raise
    # Raised outside the except block: experimaestro 2.7 shows the error an
    # exception was raised during, even with "from None", instead of its
    # message (raise it in the except block once experimaestro honours that)
    files = "; ".join(f"{raw / name}: {why}" for name, why in damaged.items())
    raise DataUnavailable(
        f"MNIST is not available: the prepared copy is damaged ({files}) and"
        f" could not be fetched again: {failure}"
    )


def fetch_again(raw: Path, damaged: dict[str, str]):
    """Fetches again the ``damaged`` files (name: what is wrong) into ``raw``

    :raises DatasetError: when they cannot be fetched
    """
    source = os.environ.get(MIRROR_VARIABLE) or "the Internet"
    raw.mkdir(parents=True, exist_ok=True)
    # Fetched next to the copy (same file system), then renamed over it: a
    # job reading the old file meanwhile goes on reading it whole
    with tempfile.TemporaryDirectory(prefix=".repair-", dir=raw.parent) as scratch:
        fetch_mnist(Path(scratch), list(damaged))
        for name, problem in damaged.items():
            os.replace(Path(scratch) / name, raw / name)
            logger.warning("Repaired %s (%s) from %s", raw / name, problem, source)


def verify_split(root: Path, train: bool):
    """Checks, in a job, the two IDX files of the training or the test part:
    a copy damaged since the experiment checked it fails the job at once

    :raises DatasetError: naming the file
    """
    raw = idx_folder(root)
    prefix = "train" if train else "t10k"
    for name, md5 in OFFICIAL_MD5.items():
        if name.startswith(prefix) and (problem := file_problem(raw / name, md5)):
            raise DatasetError(
                f"{raw / name} changed after the experiment checked it ({problem}):"
                " run the experiment again, it fetches the file again"
            )


def prepare_mnist(dataset):
    """Gets a datamaestro dataset ready (:func:`xpkit.datasets.prepare`: our
    :class:`DatasetError` in one line, without datamaestro's traceback), then
    checks the prepared files, and repairs those that changed

    :raises DataUnavailable: saying what is wrong with the files or folder
    """
    prepared = prepare(dataset, "MNIST", expected=DatasetError)
    repair_mnist(idx_folder(dataset.FILES.path), data_folder(dataset))
    return prepared


def training_images(train) -> int:
    """The number of images of MNIST's prepared training part (read from its
    IDX file's header: magic number, then the count), without loading them

    :param train: the training part's configuration (its ``root`` folder)
    """
    with (idx_folder(Path(train.root)) / "train-images-idx3-ubyte").open("rb") as fp:
        return int.from_bytes(fp.read(8)[4:], "big")
