"""Batches for a PyTorch loop: an epoch's, in an order drawn from the seed (a
job that resumes from a checkpoint gets the same batches as if it had never
stopped), or a whole dataset's in order (to measure), and a dataset's last
examples held out for validation."""

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset


def epoch_order(n_examples: int, seed: int, epoch: int) -> list[int]:
    """The order in which an epoch visits the examples, drawn from (seed, epoch)"""
    # Modulo 2**64: PyTorch's seeds are 64-bit, a large seed must not overflow
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**64)
    return torch.randperm(n_examples, generator=generator).tolist()


def epoch_batches(
    dataset: Dataset, batch_size: int, seed: int, epoch: int, skip: int = 0, **options
) -> DataLoader:
    """A DataLoader over the full batches of an epoch, in the order of
    :func:`epoch_order`, without its first ``skip`` batches (those done before
    the checkpoint); the incomplete last batch is dropped. ``options`` go to
    the DataLoader (e.g. ``num_workers``)"""
    order = epoch_order(len(dataset), seed, epoch)[skip * batch_size :]
    return loader(dataset, order, batch_size, drop_last=True, **options)


def ordered_batches(dataset: Dataset, batch_size: int, **options) -> DataLoader:
    """A DataLoader over every example, in order, the last batch smaller"""
    order = list(range(len(dataset)))
    return loader(dataset, order, batch_size, drop_last=False, **options)


def loader(dataset, order, batch_size: int, drop_last: bool, **options):
    """A DataLoader over ``dataset`` in the given order

    A dataset whose ``__getitem__`` takes a list of indices and returns a
    whole batch says so with ``serves_batches = True``: it is asked for
    batches (fast for data in memory); any other is asked for one example at
    a time and the batch collated, its transforms running as usual.
    """
    # Its own generator: the DataLoader draws a seed at each iterator, which
    # would change PyTorch's global random numbers (saved in checkpoints)
    options.setdefault("generator", torch.Generator())
    if getattr(dataset, "serves_batches", False):
        batches = BatchSampler(order, batch_size, drop_last=drop_last)
        return DataLoader(dataset, sampler=batches, batch_size=None, **options)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=order, drop_last=drop_last, **options
    )


class Part(Dataset):
    """The examples ``start`` to ``stop`` (excluded) of a dataset"""

    def __init__(self, dataset: Dataset, start: int, stop: int):
        self.dataset, self.start, self.stop = dataset, start, stop
        self.serves_batches = getattr(dataset, "serves_batches", False)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index):
        if isinstance(index, int):
            return self.dataset[self.start + index]
        return self.dataset[[self.start + i for i in index]]


def held_out(dataset: Dataset, n_held_out: int) -> tuple[Part, Part]:
    """The dataset split in two: the examples to learn from, and its last
    ``n_held_out`` examples, held out for validation"""
    n_train = len(dataset) - n_held_out
    return Part(dataset, 0, n_train), Part(dataset, n_train, len(dataset))
