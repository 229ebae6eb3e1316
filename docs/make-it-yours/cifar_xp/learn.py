"""ResNet-18 learnt on 32×32 colour images, and evaluated."""

import json
import time
from pathlib import Path

import torch
from experimaestro import (
    Config,
    LightweightTask,
    Meta,
    Param,
    PathGenerator,
    ResumableTask,
    Task,
    field,
)
from torch import nn
from torch.nn.functional import cross_entropy
from torchvision.models import resnet18

from xpkit.batches import epoch_batches, ordered_batches
from xpkit.checkpoint import restore_checkpoint, save_atomically, save_checkpoint
from xpkit.speed import configure_torch

from .data import FakeCIFAR


class ResNet(Config, nn.Module):
    """torchvision's ResNet-18 for 10 classes, not pretrained"""

    def __post_init__(self):
        super().__post_init__()
        self.initialise()  # experimaestro builds a module here, not in __init__

    def initialise(self):  # new weights, drawn from PyTorch's (seeded) generator
        self.net = resnet18(num_classes=10)

    def forward(self, images):  # (batch, 3, 32, 32) -> logits (batch, 10)
        return self.net(images)

    @torch.inference_mode()
    def measure(self, data: FakeCIFAR, device) -> dict:
        """Mean cross-entropy (nats per image) and accuracy (fraction)"""
        self.eval()
        dataset, loss, correct = data.torch_dataset(device), 0.0, 0
        for x, y in ordered_batches(dataset, batch_size=256):
            logits, y = self(x.to(device)), y.to(device)
            loss += cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
        self.train()
        return {"loss": loss / len(dataset), "accuracy": correct / len(dataset)}


class LoadParameters(LightweightTask):
    """Loads learnt parameters into a model, before the task that uses it"""

    model: Param[ResNet]
    """The model to fill"""
    path: Meta[Path]
    """A file of ``torch.save(model.state_dict())``"""

    def execute(self):
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)  # (saved on a GPU, loads anywhere)


class Learn(ResumableTask):
    """Learns with SGD, validating and saving a checkpoint at each epoch's end"""

    data: Param[FakeCIFAR]
    """Training images"""
    validation: Param[FakeCIFAR]
    """Validation images, measured at each epoch's end"""
    model: Param[ResNet]
    """The model to learn"""
    epochs: Param[int]
    """Passes over the training images"""
    lr: Param[float]
    """Learning rate of SGD (momentum 0.9), per step"""
    batch_size: Param[int]
    """Images per step"""
    seed: Param[int]
    """Seed of the initial weights, the order of the images and the crops"""
    parameters_path: Meta[Path] = field(default_factory=PathGenerator("parameters.pth"))
    """Learnt parameters (a state_dict)"""
    checkpoint_path: Meta[Path] = field(default_factory=PathGenerator("checkpoint.pth"))
    """The last checkpoint"""
    summary_path: Meta[Path] = field(default_factory=PathGenerator("learn.json"))
    """Final validation accuracy (fraction), loss (nats), train_seconds (JSON)"""
    tensorboard_path: Meta[Path] = field(default_factory=PathGenerator("runs"))
    """TensorBoard event files"""

    def __submit__(self, dep, add_action):  # what submit() returns, for Evaluate
        return dep(LoadParameters.C(model=self.model, path=self.parameters_path))

    def execute(self):
        from torch.utils.tensorboard import SummaryWriter  # slow to import

        device = configure_torch(self.seed)
        self.model.initialise()  # (built before the seed was set)
        model, data = self.model.to(device), self.data.torch_dataset(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9)
        state = restore_checkpoint(self.checkpoint_path, model, optimizer)
        per_epoch = len(data) // self.batch_size
        start = time.monotonic() - state["train_seconds"]
        with SummaryWriter(self.tensorboard_path, purge_step=state["step"]) as writer:
            for epoch in range(state["step"] // per_epoch, self.epochs):
                for x, y in epoch_batches(data, self.batch_size, self.seed, epoch):
                    loss = cross_entropy(model(x.to(device)), y.to(device))
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    state["step"] += 1
                    writer.add_scalar("train/loss", loss.item(), state["step"])
                state["validation"] = model.measure(self.validation, device)
                for name, value in state["validation"].items():
                    writer.add_scalar(f"validation/{name}", value, state["step"])
                state["train_seconds"] = time.monotonic() - start
                save_checkpoint(self.checkpoint_path, model, optimizer, state)
        summary = {f"validation_{k}": v for k, v in state["validation"].items()}
        summary["train_seconds"] = state["train_seconds"]
        save_atomically(model.state_dict(), self.parameters_path)
        save_atomically(json.dumps(summary), self.summary_path)


class Evaluate(Task):
    """Measures a learnt model on test images"""

    data: Param[FakeCIFAR]
    """Test images"""
    model: Param[ResNet]
    """The model (its parameters loaded by LoadParameters)"""
    results_path: Meta[Path] = field(default_factory=PathGenerator("results.json"))
    """Test accuracy (fraction) and loss (nats per image), JSON"""

    def execute(self):
        device = configure_torch(seed=0)
        results = self.model.to(device).measure(self.data, device)
        save_atomically(json.dumps(results), self.results_path)
