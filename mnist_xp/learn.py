"""The model (a configurable CNN) and the two tasks: learning it, evaluating it.

Images are read once into memory as uint8 tensors and normalised batch by
batch: MNIST fits in 47 MB, and skipping the per-image PIL conversion of the
usual ``DataLoader`` pipeline makes training about twice as fast on a CPU.
"""

import contextlib
import gc
import json
import logging
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from experimaestro import (
    Config,
    Constant,
    GracefulTimeout,
    LightweightTask,
    Meta,
    Param,
    PathGenerator,
    ResumableTask,
    Task,
    field,
    tqdm,
)
from torch import nn

from .data import LabelledImages

logger = logging.getLogger(__name__)

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
"""Mean and standard deviation of MNIST pixels in [0, 1], over the training set"""

EVALUATION_BATCH_SIZE = 256
"""Images per forward pass when measuring loss and accuracy. Larger batches
are slower on a CPU: the feature maps of 256 images (32 channels, 28×28
floats: 25 MB) stay in the memory the allocator keeps (32 MB at most, see
``set_job_environment`` in launchers.py); those of 1,000 images (100 MB)
are mapped afresh for every batch, and measuring takes 2 to 3 times as
long"""


class CNN(Config, nn.Module):
    """A convolutional network that classifies 28×28 grey-level images into 10
    classes

    Each of the ``n_layers`` blocks is a convolution (``hidden_dim`` channels,
    ``kernel_size``×``kernel_size``, padded so the size is kept), a 2×2
    max-pooling that halves the image side (28 → 14 → 7 → 3 → 1) and a ReLU.
    A linear layer maps the last feature map to the 10 class scores (logits).
    """

    n_layers: Param[int] = field(default=2)
    """Number of convolution blocks (1 to 4: each halves the image side)"""

    hidden_dim: Param[int] = field(default=64)
    """Number of channels of each convolution"""

    kernel_size: Param[int] = field(default=3)
    """Side of the square convolution kernels, in pixels (odd, so that the
    padding keeps the image size)"""

    def __post_init__(self):
        # experimaestro sets the parameters after __init__: build the layers here
        super().__post_init__()
        blocks, channels, side = [], 1, 28
        for _ in range(self.n_layers):
            blocks += [
                nn.Conv2d(
                    channels,
                    self.hidden_dim,
                    self.kernel_size,
                    padding=self.kernel_size // 2,
                ),
                # Pooling before the ReLU gives the same values and gradients
                # as after it (the ReLU keeps the order of values, so the
                # maximum of four ReLUs is the ReLU of their maximum), with
                # the ReLU on a map 4 times smaller: 1.3 to 1.6 times faster
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
    """Loads the parameters saved by :class:`Learn` into a model, before the
    task that uses the model runs"""

    model: Param[CNN]
    """The model to fill"""

    path: Meta[Path]
    """File written by ``torch.save(model.state_dict())``"""

    def execute(self):
        # map_location: parameters saved on a GPU load on a CPU-only machine;
        # weights_only: the file holds tensors only, never code to run
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)


def configure_torch(seed: int) -> torch.device:
    """Seeds PyTorch, sets its CPU threads to the cores this job was given,
    and returns the device to compute on (CUDA when the job got a GPU)"""
    torch.manual_seed(seed)
    # Same results for the same seed: deterministic kernels where they exist
    # (a warning names the operators that have none)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic kernels come with a debugging aid, filling every new
    # tensor with NaN, that changes no result and takes 10 to 20% of the time
    # on a CPU: off
    torch.utils.deterministic.fill_uninitialized_memory = False
    cores = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("MNIST_XP_CORES")
    if cores:
        torch.set_num_threads(int(cores))
        # Inter-op threads run independent operators side by side, which a
        # sequential CNN never has: one is enough (it can be set only once)
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    logger.info("Computing on %s with %d CPU threads", device, torch.get_num_threads())
    return device


def load_images(data: LabelledImages, device: torch.device):
    """Reads all the images at once, with torchvision

    :return: images (N, 28, 28) as uint8 and labels (N,) as int64, on ``device``
    """
    dataset = data.torchvision_dataset()
    return dataset.data.to(device), dataset.targets.to(device)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """Maps uint8 images (B, 28, 28) to float (B, 1, 28, 28), centred and scaled
    with the MNIST mean and standard deviation

    On a CPU the result is laid out channels last (a view of the same
    memory, as one channel allows): the convolutions then give channels-last
    feature maps, which ReLU and max-pooling go through several times faster
    (training 1.2 to 1.5 times faster, measuring 2.3 times)."""
    # ((x / 255 - mean) / std) done in place on a float copy: the same values,
    # without three temporary tensors
    scaled = images.to(torch.float32, copy=True).div_(255.0)
    scaled = scaled.sub_(MNIST_MEAN).div_(MNIST_STD)
    if scaled.device.type == "cpu":
        return scaled.unsqueeze(-1).permute(0, 3, 1, 2)
    return scaled.unsqueeze(1)


@torch.inference_mode()
def measure(model: CNN, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Mean cross-entropy per image and accuracy of ``model`` on a set of images

    :return: ``{"loss": float, "accuracy": float in [0, 1], "n_images": int}``
    """
    was_training = model.training
    model.eval()
    # Summed on the device (in float64, as Python floats would be), read once
    # at the end: a GPU is not made to wait for the CPU after every batch
    total_loss = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    for start in range(0, len(images), EVALUATION_BATCH_SIZE):
        logits = model(normalise(images[start : start + EVALUATION_BATCH_SIZE]))
        batch_labels = labels[start : start + EVALUATION_BATCH_SIZE]
        # Sum, then divide by the number of images: the last batch is smaller
        total_loss += F.cross_entropy(logits, batch_labels, reduction="sum").double()
        correct += (logits.argmax(1) == batch_labels).sum()
    model.train(was_training)
    return {
        "loss": total_loss.item() / len(images),
        "accuracy": correct.item() / len(images),
        "n_images": len(images),
    }


def exit_quickly():
    """Lets this Python process exit a second sooner, once its work is done

    When Python exits, its garbage collector goes through every object left,
    some 300,000 from the modules of PyTorch alone: 1 to 1.5 s during which
    the jobs waiting for this one (Evaluate for Learn) cannot start, or the
    experiment's command does not return. ``gc.freeze()`` sets the objects
    alive now aside from it; the system frees the memory of the process all
    at once anyway.
    """
    gc.freeze()


def save_atomically(content, path: Path):
    """``torch.save`` to a temporary file, then renamed: a crash mid-write
    leaves the previous file whole, never a truncated one"""
    temporary = path.with_name(f"{path.name}.tmp")
    torch.save(content, temporary)
    os.replace(temporary, path)  # atomic on POSIX file systems


class Learn(ResumableTask):
    """Learns a CNN to classify images, with Adam and the cross-entropy loss

    The last ``n_validation`` training images are held out: every ``n_val``
    steps the loss and accuracy on them are logged to the job's log and to
    TensorBoard (``runs/`` in the job folder). The job checkpoints every
    ``checkpoint_every`` steps and at the end of each epoch; restarted (after
    a crash, a kill or a cluster time limit), it resumes from the last
    checkpoint and ends with the same parameters as an uninterrupted run.
    """

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
    """Steps between two validations: changes how often we look, not what is
    learnt, so it is a Meta and not part of the identifier"""

    checkpoint_every: Meta[int] = field(default=500)
    """Steps between two checkpoints (there is one at each epoch's end too)"""

    parameters_path: Meta[Path] = field(default_factory=PathGenerator("parameters.pth"))
    """Where the learnt parameters are saved"""

    checkpoint_path: Meta[Path] = field(default_factory=PathGenerator("checkpoint.pth"))
    """The last checkpoint (model, optimiser, random generator, step)"""

    summary_path: Meta[Path] = field(default_factory=PathGenerator("learn.json"))
    """Final validation loss and accuracy, steps and training time (JSON)"""

    time_margin: Meta[float] = field(default=120.0)
    """Seconds before the cluster's time limit at which the job checkpoints
    and asks to be resubmitted"""

    tensorboard_path: Meta[Path] = field(default_factory=PathGenerator("runs"))
    """TensorBoard event files"""

    def task_outputs(self, dep) -> LoadParameters:
        # What submit() returns: a loader that later tasks run first
        return dep(LoadParameters.C(model=self.model, path=self.parameters_path))

    def execute(self):
        device = configure_torch(self.seed)
        images, labels = load_images(self.data, device)
        n_train = len(images) - self.n_validation
        if n_train < self.batch_size:
            raise ValueError(
                f"n_validation={self.n_validation} leaves {n_train} training"
                f" images, fewer than one batch ({self.batch_size})"
            )
        train = images[:n_train], labels[:n_train]
        validation = images[n_train:], labels[n_train:]

        # The model was built before the seed was set: draw its weights again
        self.model.initialise()
        model = self.model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        state = self.resume(model, optimizer)
        steps_per_epoch = n_train // self.batch_size  # the incomplete batch is dropped
        total_steps = self.epochs * steps_per_epoch
        logger.info(
            "Training on %d images, validating on %d",
            *map(len, (train[0], validation[0])),
        )

        from torch.utils.tensorboard import SummaryWriter  # slow to import

        # purge_step: on resume, drop the points logged after the checkpoint
        writer = SummaryWriter(self.tensorboard_path, purge_step=state["step"])
        clock = time.monotonic()
        try:
            with tqdm(total=total_steps, initial=state["step"], desc="train") as bar:
                while state["step"] < total_steps:
                    self.train_step(model, optimizer, train, state, steps_per_epoch)
                    bar.update(1)
                    state["train_seconds"] += time.monotonic() - clock
                    clock = time.monotonic()
                    step = state["step"]
                    if step % self.n_val == 0 or step == total_steps:
                        self.validate(model, validation, state, writer)
                    if step % self.checkpoint_every == 0 or step % steps_per_epoch == 0:
                        self.save_checkpoint(model, optimizer, state)
                        self.stop_if_out_of_time()
        finally:
            writer.close()

        torch.save(model.state_dict(), self.parameters_path)
        self.summary_path.write_text(json.dumps(self.summary(state), indent=2))
        exit_quickly()

    def train_step(self, model, optimizer, train, state, steps_per_epoch):
        """One optimisation step on the next batch of the current epoch"""
        images, labels = train
        epoch, position = divmod(state["step"], steps_per_epoch)
        if position == 0 or "order" not in state:
            # Each epoch visits the images in an order drawn from (seed, epoch)
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            state["order"] = torch.randperm(len(images), generator=generator)
        batch = state["order"][
            position * self.batch_size : (position + 1) * self.batch_size
        ].to(images.device)
        logits = model(normalise(images[batch]))
        loss = F.cross_entropy(logits, labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        state["step"] += 1
        state["train_loss"] = loss.item()

    def validate(self, model, validation, state, writer):
        """Logs the training loss and the validation loss and accuracy"""
        metrics = measure(model, *validation)
        state["validation"] = metrics
        step = state["step"]
        writer.add_scalar("train/loss", state["train_loss"], step)
        writer.add_scalar("validation/loss", metrics["loss"], step)
        writer.add_scalar("validation/accuracy", metrics["accuracy"], step)
        writer.flush()
        logger.info(
            "step %d: train loss %.4f, validation loss %.4f, accuracy %.4f",
            step,
            state["train_loss"],
            metrics["loss"],
            metrics["accuracy"],
        )

    def resume(self, model, optimizer) -> dict:
        """Restores the last checkpoint, if any, and returns the training state"""
        if not self.checkpoint_path.is_file():
            return {"step": 0, "train_seconds": 0.0}
        checkpoint = torch.load(
            self.checkpoint_path, map_location="cpu", weights_only=True
        )
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        torch.set_rng_state(checkpoint["torch_rng"])
        logger.info("Resuming from the checkpoint at step %d", checkpoint["step"])
        return checkpoint["state"]

    def save_checkpoint(self, model, optimizer, state):
        """Saves everything needed to resume training"""
        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": state["step"],
            "state": {k: v for k, v in state.items() if k != "order"},
        }
        save_atomically(checkpoint, self.checkpoint_path)

    def stop_if_out_of_time(self):
        """Raises GracefulTimeout when the cluster's time limit is near, so that
        experimaestro resubmits the job, which resumes from the checkpoint"""
        remaining = self.remaining_time()
        if remaining is not None and remaining < self.time_margin:
            raise GracefulTimeout(f"only {remaining:.0f} s left: stopping here")

    def summary(self, state) -> dict:
        """What the analysis reads: final validation metrics, steps, time"""
        return {
            "validation_loss": state["validation"]["loss"],
            "validation_accuracy": state["validation"]["accuracy"],
            "steps": state["step"],
            "train_seconds": state["train_seconds"],
        }


class Evaluate(Task):
    """Measures a learnt model on test images

    Writes ``results.json``: ``loss`` (mean cross-entropy per image, in nats),
    ``accuracy`` (fraction of images whose most likely class is right) and
    ``n_images``.
    """

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
        images, labels = load_images(self.data, device)
        results = measure(self.model.to(device), images, labels)
        logger.info("Test results: %s", results)
        self.results_path.write_text(json.dumps(results, indent=2))
        exit_quickly()
