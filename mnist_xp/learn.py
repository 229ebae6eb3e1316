"""The model, a configurable CNN, and the two tasks: learning it, evaluating it."""

import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from experimaestro import (
    Config,
    Constant,
    LightweightTask,
    Meta,
    Param,
    PathGenerator,
    ResumableTask,
    Task,
    field,
    tqdm,  # a progress bar that experimaestro's monitors show
)
from torch import nn

from xpkit.batches import epoch_batches, held_out, ordered_batches
from xpkit.checkpoint import (
    restore_checkpoint,
    save_atomically,
    save_checkpoint,
    stop_if_out_of_time,
)
from xpkit.speed import configure_torch, exit_quickly

from .data import LabelledImages

logger = logging.getLogger(__name__)


class CNN(Config, nn.Module):
    """A convolutional network that classifies 28×28 grey-level images into
    10 classes: ``n_layers`` blocks (convolution, 2×2 max-pooling, ReLU), then
    a linear layer that gives the 10 class scores (logits)"""

    n_layers: Param[int] = field(default=2)
    """Number of convolution blocks (each halves the image side)"""

    hidden_dim: Param[int] = field(default=64)
    """Number of channels of each convolution"""

    kernel_size: Param[int] = field(default=3)
    """Side of the square convolution kernels, in pixels"""

    def __post_init__(self):
        # experimaestro sets the parameters after __init__: build the layers here
        super().__post_init__()
        blocks, channels, side = [], 1, 28
        for _ in range(self.n_layers):
            padding = self.kernel_size // 2  # keeps the image side
            blocks += [
                nn.Conv2d(channels, self.hidden_dim, self.kernel_size, padding=padding),
                # Pooling before the ReLU: same result, ReLU on 4 times fewer values
                nn.MaxPool2d(2),
                nn.ReLU(),
            ]
            channels, side = self.hidden_dim, side // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(channels * side * side, 10)

    def initialise(self):
        """Draws new initial weights from PyTorch's (seeded) random generator"""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Maps normalised images (batch, 1, 28, 28) to logits (batch, 10)"""
        return self.classifier(self.features(images).flatten(1))


class LoadParameters(LightweightTask):
    """Loads learnt parameters into a model, before the task that uses it runs"""

    model: Param[CNN]
    """The model to fill"""

    path: Meta[Path]
    """File written by ``torch.save(model.state_dict())``"""

    def execute(self):
        # map_location: saved on a GPU, loads anywhere; weights_only: no code to run
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)


class Learn(ResumableTask):
    """Learns a CNN with Adam, validating every ``n_val`` steps on the last
    ``n_validation`` training images. Resumable: restarted after a crash or a
    time limit, it goes on from its last checkpoint to the same parameters"""

    version: Constant[int] = 1
    """Bump when the training algorithm changes, so that new jobs are run"""

    data: Param[LabelledImages]
    """Training images"""

    model: Param[CNN]
    """The model to train"""

    epochs: Param[int] = field(default=1)
    """Number of passes over the training images"""

    lr: Param[float] = field(default=1e-3)
    """Learning rate of Adam"""

    batch_size: Param[int] = field(default=64)
    """Number of images per optimisation step"""

    n_validation: Param[int] = field(default=10_000)
    """Number of training images (the last ones) held out for validation"""

    seed: Param[int] = field(default=0)
    """Seed of the random generators (initial weights, order of the images)"""

    n_val: Meta[int] = field(default=100)
    """Steps between two validations (how often we look, not what is learnt)"""

    checkpoint_every: Meta[int] = field(default=500)
    """Steps between two checkpoints (there is one at each epoch's end too)"""

    time_margin: Meta[float] = field(default=120.0)
    """Seconds before the cluster's time limit at which the job stops to resume"""

    parameters_path: Meta[Path] = field(default_factory=PathGenerator("parameters.pth"))
    """Where the learnt parameters are saved"""

    checkpoint_path: Meta[Path] = field(default_factory=PathGenerator("checkpoint.pth"))
    """The last checkpoint"""

    summary_path: Meta[Path] = field(default_factory=PathGenerator("learn.json"))
    """Final validation loss and accuracy, steps and seconds of training (JSON)"""

    tensorboard_path: Meta[Path] = field(default_factory=PathGenerator("runs"))
    """TensorBoard event files"""

    def __submit__(self, dep, add_action):
        # What submit() returns: a task that loads the learnt parameters into
        # the model, for the tasks that use it (Evaluate's init_tasks)
        return dep(LoadParameters.C(model=self.model, path=self.parameters_path))

    def execute(self):
        from torch.utils.tensorboard import SummaryWriter  # slow to import

        device = configure_torch(self.seed)  # seeds, threads, GPU if given one
        dataset = self.data.torch_dataset(device)
        training, validation = held_out(dataset, self.n_validation)
        self.model.initialise()  # the model was built before the seed was set
        model = self.model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        state = restore_checkpoint(self.checkpoint_path, model, optimizer)
        steps_per_epoch = len(training) // self.batch_size  # full batches only
        total_steps = self.epochs * steps_per_epoch
        logger.info(
            "Training on %d images, validating on %d", len(training), len(validation)
        )

        start = time.monotonic() - state["train_seconds"]
        # purge_step: on resume, drop the points logged after the checkpoint
        writer = SummaryWriter(self.tensorboard_path, purge_step=state["step"])
        with writer, tqdm(total=total_steps, initial=state["step"]) as progress:
            for epoch in range(state["step"] // steps_per_epoch, self.epochs):
                done = state["step"] % steps_per_epoch  # before the checkpoint
                batches = epoch_batches(
                    training, self.batch_size, self.seed, epoch, skip=done
                )
                for images, labels in batches:
                    images, labels = images.to(device), labels.to(device)
                    loss = F.cross_entropy(model(images), labels)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    step = state["step"] = state["step"] + 1
                    progress.update(1)
                    if step % self.n_val == 0 or step == total_steps:
                        self.validate(model, validation, loss, state, writer)
                    if step % self.checkpoint_every == 0 or step % steps_per_epoch == 0:
                        state["train_seconds"] = time.monotonic() - start
                        save_checkpoint(self.checkpoint_path, model, optimizer, state)
                        if step < total_steps:  # near a cluster time limit: resubmit
                            stop_if_out_of_time(self, self.time_margin)

        save_atomically(model.state_dict(), self.parameters_path)
        save_atomically(json.dumps(self.summary(state), indent=2), self.summary_path)
        exit_quickly()  # skip Python's slow final clean-up (xpkit/speed.py)

    def validate(self, model, validation, loss, state, writer):
        """Logs the training loss and the validation loss and accuracy"""
        step, train_loss = state["step"], loss.item()
        metrics = state["validation"] = measure(model, validation)
        writer.add_scalar("train/loss", train_loss, step)
        writer.add_scalar("validation/loss", metrics["loss"], step)
        writer.add_scalar("validation/accuracy", metrics["accuracy"], step)
        writer.flush()  # TensorBoard shows it while the job runs
        logger.info(
            f"step {step}: train loss {train_loss:.4f}, validation loss"
            f" {metrics['loss']:.4f}, accuracy {metrics['accuracy']:.4f}"
        )

    def summary(self, state) -> dict:
        """What the analysis reads: final validation metrics, steps, time"""
        return {
            "validation_loss": state["validation"]["loss"],
            "validation_accuracy": state["validation"]["accuracy"],
            "steps": state["step"],
            "train_seconds": state["train_seconds"],
        }


class Evaluate(Task):
    """Measures a learnt model on test images, and writes ``results.json``:
    ``loss`` (mean cross-entropy per image, in nats), ``accuracy`` (fraction
    of images whose most likely class is right) and ``n_images``"""

    version: Constant[int] = 1
    """Bump when the evaluation changes, so that new jobs are run"""

    data: Param[LabelledImages]
    """Test images"""

    model: Param[CNN]
    """The model to evaluate (its parameters are loaded by LoadParameters)"""

    results_path: Meta[Path] = field(default_factory=PathGenerator("results.json"))
    """Where the results are written (JSON)"""

    def execute(self):
        device = configure_torch(seed=0)
        results = measure(self.model.to(device), self.data.torch_dataset(device))
        logger.info("Test results: %s", results)
        save_atomically(json.dumps(results, indent=2), self.results_path)
        exit_quickly()  # skip Python's slow final clean-up (xpkit/speed.py)


@torch.inference_mode()
def measure(model: nn.Module, dataset, batch_size: int = 256) -> dict:
    """Mean cross-entropy per image and accuracy of ``model`` on a dataset

    :return: ``{"loss": float (nats), "accuracy": float in [0, 1], "n_images": int}``
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct = 0.0, 0
    for images, labels in ordered_batches(dataset, batch_size):
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        # Sum over the images, divide once: the last batch is smaller
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
    model.train(was_training)
    n = len(dataset)
    return {"loss": total_loss / n, "accuracy": correct / n, "n_images": n}
