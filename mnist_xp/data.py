"""MNIST, registered with datamaestro under the identifier ``com.lecun.mnist``.

The dataset is the MNIST database of handwritten digits (Y. LeCun, C. Cortes and
C. J. C. Burges): 60,000 training and 10,000 test images of 28×28 grey levels,
stored as four IDX files. Licence: CC BY-SA 3.0.

datamaestro downloads the files once, in the process that launches the
experiment, into its data folder (``~/datamaestro`` or ``$DATAMAESTRO_DIR``).
The files are written to a temporary folder first and moved into place only
when all four are there and their checksums are right, so a half-copied folder
is never taken as complete.

Offline machines (cluster nodes often are) take the files from a local folder
instead: set ``MNIST_XP_MIRROR`` to a folder holding the four IDX files,
gzipped (``train-images-idx3-ubyte.gz``) or not.
"""

import gzip
import hashlib
import logging
import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from datamaestro.data import Base
from datamaestro.data.ml import Supervised
from datamaestro.definitions import Dataset, dataset
from datamaestro.download import FolderResource
from experimaestro import Meta, Param

if TYPE_CHECKING:
    # torchvision takes seconds to import: only the jobs that read images do
    from torchvision.datasets import MNIST, VisionDataset

logger = logging.getLogger(__name__)

MIRROR_VARIABLE = "MNIST_XP_MIRROR"
"""Environment variable naming a local folder with the four IDX files"""

CHECKSUMS_VARIABLE = "MNIST_XP_MD5SUMS"
"""Environment variable naming an ``md5sum``-style file that replaces the
official checksums: only for the tests' small MNIST sample"""

OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""MD5 of each uncompressed IDX file, as published with MNIST"""


class DatasetError(RuntimeError):
    """The MNIST files are missing, incomplete or corrupted"""


class LabelledImages(Base, ABC):
    """A set of images, each with a class label"""

    @abstractmethod
    def torchvision_dataset(self, **kwargs) -> "VisionDataset":
        """Returns the images as a torchvision dataset (keyword arguments,
        e.g. ``transform``, are passed to its constructor)"""
        ...


class MNISTLabelledImages(LabelledImages):
    """The training or the test part of MNIST, read by torchvision"""

    root: Meta[Path]
    """Folder holding ``MNIST/raw/`` (a Meta: where the files lie on this
    machine does not change the data, so it is not part of identifiers)"""

    train: Param[bool]
    """True for the 60,000 training images, False for the 10,000 test images"""

    def torchvision_dataset(self, **kwargs) -> "MNIST":
        from torchvision.datasets import MNIST

        return MNIST(self.root, train=self.train, download=False, **kwargs)


def expected_checksums() -> dict[str, str]:
    """Returns the MD5 expected for each uncompressed IDX file: the official
    ones, unless ``MNIST_XP_MD5SUMS`` names another list (``md5sum`` format)"""
    if path := os.environ.get(CHECKSUMS_VARIABLE):
        lines = Path(path).read_text().split("\n")
        return {name: md5 for md5, name in (line.split() for line in lines if line)}
    return dict(OFFICIAL_MD5)


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
    """Checks each uncompressed IDX file in ``folder`` against its expected MD5

    :raises DatasetError: naming the first file whose checksum differs
    """
    for name, md5 in expected_checksums().items():
        if (actual := md5sum(folder / name)) != md5:
            raise DatasetError(
                f"{name}: MD5 {actual} differs from the expected {md5}; the file"
                " is truncated or corrupted: replace it with an original copy"
            )


class MNISTFiles(FolderResource):
    """The four uncompressed IDX files, in the layout torchvision reads
    (``MNIST/raw/<name>``)"""

    def _download(self, destination: Path):
        raw = destination / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        if mirror := os.environ.get(MIRROR_VARIABLE):
            logger.info("Copying MNIST from %s", mirror)
            copy_from_mirror(Path(mirror), raw)
        else:
            logger.info("Downloading MNIST")
            download_from_internet(raw)
        verify_checksums(raw)


@dataset(id="com.lecun.mnist", url="https://yann.lecun.com/exdb/mnist/")
class MNISTDataset(Dataset):
    """The MNIST database of handwritten digits

    60,000 training and 10,000 test images of 28×28 grey levels, each
    labelled with its digit (0 to 9).
    """

    FILES = MNISTFiles("files")

    def config(self) -> Supervised:
        root = self.FILES.path
        return Supervised.C(
            train=MNISTLabelledImages.C(root=root, train=True),
            test=MNISTLabelledImages.C(root=root, train=False),
        )
