"""The local launcher's GPU allocation, without a GPU: each job gets GPUs of
its own, in turn, and waits for their tokens."""

import pytest

from xpkit.gpus import GpuAllocator, machine_gpus


class Token:
    def __init__(self, name: str, total: int):
        self.name, self.total = name, total

    def dependency(self, count: int):
        return (self.name, count)


class Connector:
    def createtoken(self, name: str, total: int) -> Token:
        return Token(name, total)


class Job:
    def __init__(self):
        self.environ, self.dependencies = {}, set()


def allocate(gpus: list[str], per_job: int, jobs: int) -> list[Job]:
    allocator = GpuAllocator(Connector(), gpus, per_job)
    submitted = [Job() for _ in range(jobs)]
    for job in submitted:
        allocator(job)
    return submitted


def test_one_gpu_each_in_turn():
    jobs = allocate(["0", "1", "2", "3"], per_job=1, jobs=5)
    assert [job.environ["CUDA_VISIBLE_DEVICES"] for job in jobs] == [
        "0",
        "1",
        "2",
        "3",
        "0",
    ]
    assert jobs[0].dependencies == {("xpkit-gpu-0", 1)}
    assert jobs[4].dependencies == jobs[0].dependencies  # waits for the first job's GPU


def test_several_gpus_per_job():
    jobs = allocate(["0", "1", "2", "3", "4"], per_job=2, jobs=3)
    assert [job.environ["CUDA_VISIBLE_DEVICES"] for job in jobs] == [
        "0,1",
        "2,3",
        "0,1",
    ]
    assert jobs[1].dependencies == {("xpkit-gpu-2", 1), ("xpkit-gpu-3", 1)}


def test_visible_devices_are_the_machine(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert machine_gpus() == ["2", "5"]
    jobs = allocate(machine_gpus(), per_job=1, jobs=2)
    assert [job.environ["CUDA_VISIBLE_DEVICES"] for job in jobs] == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert machine_gpus() == []


def test_more_gpus_than_the_machine_has():
    with pytest.raises(ValueError, match="3 GPUs per job, but 2"):
        GpuAllocator(Connector(), ["0", "1"], 3)
