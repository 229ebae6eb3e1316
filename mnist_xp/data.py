"""MNIST, registered with datamaestro under the identifier ``com.lecun.mnist``.

The MNIST database of handwritten digits (Y. LeCun, C. Cortes and C. J. C.
Burges): 60,000 training and 10,000 test images of 28×28 grey levels, in four
IDX files. Licence: CC BY-SA 3.0.
"""

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from datamaestro.data import Base
from datamaestro.data.ml import Supervised
from datamaestro.definitions import Dataset, dataset
from datamaestro.download import FolderResource
from experimaestro import Meta, Param

from .mnist_files import fetch_mnist, verify_split

if TYPE_CHECKING:
    import torch


class LabelledImages(Base, ABC):
    """A set of images, each with a class label"""

    @abstractmethod
    def torch_dataset(self, device: "torch.device") -> "torch.utils.data.Dataset":
        """The images as a PyTorch Dataset of (image, label) pairs (a dataset
        held in memory may put its tensors on ``device``)"""


class MNISTLabelledImages(LabelledImages):
    """The training or the test part of MNIST, read by torchvision"""

    root: Meta[Path]
    """Folder holding ``MNIST/raw/`` (where the files lie is not part of the
    data: a Meta, left out of identifiers)"""

    train: Param[bool]
    """True for the 60,000 training images, False for the 10,000 test images"""

    def torch_dataset(self, device) -> "torch.utils.data.Dataset":
        # torchvision takes seconds to import: only the jobs that read images do
        from torchvision.datasets import MNIST

        from .images import MnistInMemory

        # A file damaged since the experiment checked it fails the job here
        verify_split(self.root, self.train)
        mnist = MNIST(self.root, train=self.train, download=False)
        return MnistInMemory(mnist.data, mnist.targets, device)


class MNISTFiles(FolderResource):
    """The four IDX files, in the layout torchvision reads (``MNIST/raw/``)"""

    def _download(self, destination: Path):
        # datamaestro gives a temporary folder, moved into place on success
        fetch_mnist(destination / "MNIST" / "raw")


@dataset(id="com.lecun.mnist", url="https://yann.lecun.com/exdb/mnist/")
class MNISTDataset(Dataset):
    """The MNIST database of handwritten digits: 60,000 training and 10,000
    test images of 28×28 grey levels, each labelled with its digit (0 to 9)"""

    FILES = MNISTFiles("files")

    def config(self) -> Supervised:
        root = self.FILES.path
        return Supervised.C(
            train=MNISTLabelledImages.C(root=root, train=True),
            test=MNISTLabelledImages.C(root=root, train=False),
        )
