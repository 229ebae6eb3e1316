"""Getting the four MNIST files: from a local mirror or the Internet, checked
against their official MD5, before any job is submitted.

Offline machines (cluster nodes often are) take the files from the folder
named by ``MNIST_XP_MIRROR`` (the four IDX files, gzipped or not). See
``docs/troubleshooting.md`` for what each error means.
"""

import contextlib
import gzip
import hashlib
import io
import logging
import os
import shutil
import sys
from pathlib import Path

from datamaestro import prepare_dataset
from datamaestro.definitions import DownloadError
from experimaestro.exceptions import HandledException

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


class MnistUnavailable(HandledException):
    """MNIST could not be made ready: the experiment stops before submitting"""


def md5sum(path: Path) -> str:
    """MD5 of a file, in hexadecimal"""
    digest = hashlib.md5()
    with path.open("rb") as fp:
        while chunk := fp.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def copy_from_mirror(mirror: Path, destination: Path):
    """Copies the four IDX files from a local folder, uncompressing ``.gz`` ones

    :raises DatasetError: if the folder or one of the files is missing
    """
    if not mirror.is_dir():
        raise DatasetError(
            f"{MIRROR_VARIABLE}={mirror} is not a folder: set it to a folder"
            " holding the four MNIST IDX files (gzipped or not)"
        )
    for name in OFFICIAL_MD5:
        if (mirror / name).is_file():
            shutil.copyfile(mirror / name, destination / name)
        elif (mirror / f"{name}.gz").is_file():
            with (
                gzip.open(mirror / f"{name}.gz", "rb") as source,
                (destination / name).open("wb") as copy,
            ):
                shutil.copyfileobj(source, copy)
        else:
            raise DatasetError(
                f"{mirror} has neither {name} nor {name}.gz: copy the four MNIST"
                f" IDX files there, or unset {MIRROR_VARIABLE} to download them"
            )


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
        raise DatasetError(
            f"Could not download MNIST ({error}). On a machine without network,"
            f" set {MIRROR_VARIABLE} to a folder holding the four IDX files"
        ) from error
    for name in OFFICIAL_MD5:
        shutil.move(root / "MNIST" / "raw" / name, destination / name)
    shutil.rmtree(root)


def verify_checksums(folder: Path):
    """Checks each uncompressed IDX file in ``folder`` against its MD5

    :raises DatasetError: naming the first file whose checksum differs
    """
    for name, md5 in OFFICIAL_MD5.items():
        if (actual := md5sum(folder / name)) != md5:
            raise DatasetError(
                f"{name}: MD5 {actual} differs from the expected {md5}; the file"
                " is truncated or corrupted: replace it with an original copy"
            )


def fetch_mnist(raw: Path):
    """Puts the four checked IDX files in ``raw``: from ``MNIST_XP_MIRROR`` when
    it is set, else from the Internet"""
    raw.mkdir(parents=True, exist_ok=True)
    if mirror := os.environ.get(MIRROR_VARIABLE):
        logger.info("Copying MNIST from %s", mirror)
        copy_from_mirror(Path(mirror), raw)
    else:
        logger.info("Downloading MNIST")
        download_from_internet(raw)
    verify_checksums(raw)


def prepare_mnist(dataset):
    """Gets a datamaestro dataset ready (``prepare_dataset``), turning a
    :class:`DatasetError` into one message, without datamaestro's traceback

    :raises MnistUnavailable: saying what is wrong with the files
    """
    log = io.StringIO()
    try:
        # datamaestro prints the traceback of a failed download: keep it for
        # unexpected errors only, ours (DatasetError) say all there is to say
        with contextlib.redirect_stderr(log):
            return prepare_dataset(dataset, download=True)
    except DownloadError as error:
        if not isinstance(error.__cause__, DatasetError):
            sys.stderr.write(log.getvalue())
            raise
        problem = error.__cause__
    # Raised outside the except block, so that only our message is shown
    raise MnistUnavailable(f"MNIST is not available: {problem}")
