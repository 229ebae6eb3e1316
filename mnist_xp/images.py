"""MNIST in memory, served a whole batch at a time: the 70,000 images fit in
55 MB, and cutting a batch out of one tensor is several times faster than
turning images into tensors one by one (``docs/speed.md``)."""

import torch
from torch.utils.data import Dataset

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
"""Mean and standard deviation of MNIST pixels in [0, 1], over the training set"""


class MnistInMemory(Dataset):
    """MNIST's images (uint8, N×28×28) and labels, on a device; indexed by a
    list of indices, it gives a batch: normalised images (B, 1, 28, 28) and
    their labels (B,)"""

    serves_batches = True
    """Ask for whole batches (see ``xpkit.batches``)"""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, device):
        self.images, self.labels = images.to(device), labels.to(device)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices):
        indices = torch.as_tensor(indices, device=self.images.device)
        return normalise(self.images[indices]), self.labels[indices]


def normalise(images: torch.Tensor) -> torch.Tensor:
    """Maps uint8 images (B, 28, 28) to centred and scaled floats (B, 1, 28, 28)"""
    scaled = images.to(torch.float32, copy=True).div_(255.0)
    return fast_layout(scaled.sub_(MNIST_MEAN).div_(MNIST_STD))


def fast_layout(images: torch.Tensor) -> torch.Tensor:
    """Adds the channel axis to (B, 28, 28) images: (B, 1, 28, 28)

    On a CPU the result is a channels-last view of the same memory (one
    channel allows it): the feature maps of the convolutions are then
    channels-last too, which ReLU and max-pooling go through much faster.
    """
    if images.device.type == "cpu":
        return images.unsqueeze(-1).permute(0, 3, 1, 2)
    return images.unsqueeze(1)
