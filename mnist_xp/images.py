"""MNIST as tensors in memory, in plain PyTorch: loading, normalising,
shuffling, and measuring a model's loss and accuracy."""

import torch
import torch.nn.functional as F

from .data import LabelledImages
from .speed import fast_layout

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
"""Mean and standard deviation of MNIST pixels in [0, 1], over the training set"""

EVALUATION_BATCH_SIZE = 256
"""Images per forward pass when measuring (larger is slower on a CPU)"""


def load_images(data: LabelledImages, device: torch.device):
    """All the images at once: (N, 28, 28) uint8 and labels (N,) int64, on
    ``device`` (MNIST fits in 47 MB, and one tensor is faster than PIL images)"""
    dataset = data.torchvision_dataset()
    return dataset.data.to(device), dataset.targets.to(device)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """Maps uint8 images (B, 28, 28) to centred and scaled floats (B, 1, 28, 28)"""
    scaled = images.to(torch.float32, copy=True).div_(255.0)
    return fast_layout(scaled.sub_(MNIST_MEAN).div_(MNIST_STD))


@torch.inference_mode()
def measure(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Mean cross-entropy per image and accuracy of ``model`` on a set of images

    :return: ``{"loss": float (nats), "accuracy": float in [0, 1], "n_images": int}``
    """
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    for start in range(0, len(images), EVALUATION_BATCH_SIZE):
        logits = model(normalise(images[start : start + EVALUATION_BATCH_SIZE]))
        batch_labels = labels[start : start + EVALUATION_BATCH_SIZE]
        # Sum over the images, divide once: the last batch is smaller
        total_loss += F.cross_entropy(logits, batch_labels, reduction="sum").double()
        correct += (logits.argmax(1) == batch_labels).sum()
    model.train(was_training)
    return {
        "loss": total_loss.item() / len(images),
        "accuracy": correct.item() / len(images),
        "n_images": len(images),
    }


def epoch_order(n_images: int, seed: int, epoch: int) -> torch.Tensor:
    """The order in which an epoch visits the images, drawn from (seed, epoch):
    a resumed job visits them in the same order"""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_images, generator=generator)
