"""(a) and (b) of the benchmark: training throughput of the project's data
path (a DataLoader over MNIST in memory) against torchvision's, and evaluation time of ``measure``. Imported by
benchmarks/run.py, which puts the repository and tests/ on sys.path."""

import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mnist_xp.data import MNISTLabelledImages
from mnist_xp.images import MNIST_MEAN, MNIST_STD
from mnist_xp.learn import CNN, measure
from xpkit.batches import epoch_batches, held_out

MODELS = {
    "n_layers=1": {"n_layers": 1, "hidden_dim": 32, "kernel_size": 3},
    "n_layers=2": {"n_layers": 2, "hidden_dim": 32, "kernel_size": 3},
}
"""The two models of params.yaml"""

BATCH_SIZE = 64
LEARNING_RATE = 1e-3


# --- (a) training throughput -------------------------------------------------


def project_steps(model, training, device, layout=None):
    """One optimisation step per call, as Learn does it: the batches of
    ``epoch_batches`` (a DataLoader asking MNIST in memory for whole batches),
    epoch after epoch

    :param training: the training part of MNIST in memory, on ``device``
    :param layout: None for the dataset's own memory layout, or
        ``"channels-first"`` to give the model the usual (N, C, H, W) one
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    epoch, batches = -1, iter(())

    def step():
        nonlocal epoch, batches
        try:
            images, labels = next(batches)
        except StopIteration:
            epoch += 1
            batches = iter(epoch_batches(training, BATCH_SIZE, seed=0, epoch=epoch))
            images, labels = next(batches)
        images, labels = images.to(device), labels.to(device)
        if layout == "channels-first":
            images = images.squeeze(1).unsqueeze(1)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torchvision_steps(model, root: Path, n_train: int, device):
    """One optimisation step per call, the usual way: torchvision's MNIST
    dataset, a DataLoader (no worker processes) and per-image PIL transforms"""
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import MNIST
    from torchvision.transforms import Compose, Normalize, ToTensor

    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    transform = Compose([ToTensor(), Normalize((MNIST_MEAN,), (MNIST_STD,))])
    dataset = Subset(MNIST(root, train=True, transform=transform), range(n_train))
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )
    batches = iter(loader)

    def step():
        nonlocal batches
        try:
            images, labels = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, labels = next(batches)
        images, labels = images.to(device), labels.to(device)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def new_model(spec: dict, device) -> CNN:
    """A CNN of params.yaml, with the weights drawn from seed 0"""
    torch.manual_seed(0)
    model = CNN.C(**spec).instance()
    model.initialise()
    return model.to(device).train()


def synchronise(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(step, n: int, device) -> float:
    """Seconds taken by ``n`` calls of ``step``"""
    synchronise(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    synchronise(device)
    return time.perf_counter() - start


def training_throughput(root: Path, n_validation: int, args, device) -> dict:
    """(a): images per second of both data paths, for each model

    Each path gets ``warmup`` untimed steps, then ``repeats`` windows of
    ``steps`` timed steps, the two paths taking turns; the best window counts
    (the machine may be shared), the median is kept too.
    """
    data = MNISTLabelledImages.C(id="com.lecun.mnist.train", root=root, train=True)
    start = time.perf_counter()
    training, _ = held_out(data.instance().torch_dataset(device), n_validation)
    load_seconds = time.perf_counter() - start
    n_train = len(training)

    figures = {}
    for name, spec in MODELS.items():
        paths = {
            "project": project_steps(new_model(spec, device), training, device),
            "torchvision": torchvision_steps(
                new_model(spec, device), root, n_train, device
            ),
        }
        if not args.quick:
            # The part of the gain that the memory layout brings
            paths["project_channels_first"] = project_steps(
                new_model(spec, device), training, device, "channels-first"
            )
        for step in paths.values():
            timed_steps(step, args.warmup, device)
        rates = {path: [] for path in paths}
        for _ in range(args.repeats):
            for path, step in paths.items():
                seconds = timed_steps(step, args.steps, device)
                rates[path].append(args.steps * BATCH_SIZE / seconds)
        best = {path: max(values) for path, values in rates.items()}
        figures[name] = {
            **spec,
            "project_images_per_s": best["project"],
            "torchvision_images_per_s": best["torchvision"],
            "ratio": best["project"] / best["torchvision"],
            **{
                f"{path}_median_images_per_s": statistics.median(values)
                for path, values in rates.items()
            },
        }
        if "project_channels_first" in best:
            figures[name]["project_channels_first_images_per_s"] = best[
                "project_channels_first"
            ]
    return {
        "batch_size": BATCH_SIZE,
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "repeats": args.repeats,
        "train_images": n_train,
        "load_seconds": load_seconds,
        "models": figures,
    }


# --- (b) evaluation ------------------------------------------------------------


def evaluation_throughput(root: Path, args, device) -> dict:
    """(b): ``measure`` over the test images; the first call (what an Evaluate
    job does) and the best of the next ones"""
    data = MNISTLabelledImages.C(id="com.lecun.mnist.test", root=root, train=False)
    start = time.perf_counter()
    test = data.instance().torch_dataset(device)
    load_seconds = time.perf_counter() - start
    figures = {}
    for name, spec in MODELS.items():
        model = new_model(spec, device)
        times = []
        for _ in range(1 + args.repeats):
            synchronise(device)
            start = time.perf_counter()
            measure(model, test)
            synchronise(device)
            times.append(time.perf_counter() - start)
        figures[name] = {
            **spec,
            "first_seconds": times[0],
            "best_seconds": min(times[1:]),
            "images_per_s": len(test) / min(times[1:]),
        }
    return {"n_images": len(test), "load_seconds": load_seconds, "models": figures}
