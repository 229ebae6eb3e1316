"""The outputs of README.md (see shown_outputs.py)"""

from conftest import REAL_MNIST
from shown_outputs import FULL_MNIST, Runs, output

JOBS_LIST = (
    "experimaestro jobs --workspace mnist-xp list --tags --experiment MNIST_train"
)


def params_on_full_mnist(runs: Runs):
    """``experimaestro run-experiment params.yaml`` on the full MNIST: the
    sandbox, and what the run printed"""
    sandbox = runs.sandbox("params", mnist=REAL_MNIST)
    return sandbox, sandbox.run("experimaestro run-experiment params.yaml")


@output("run-log", needs=[FULL_MNIST], volatile=[r"Process\(\d+\)"])
def run_log(runs: Runs) -> str:
    """The lines of the experiment's log that say when a job is submitted,
    then those that say when a process is started for one (the first two):
    the two kinds interleave differently from run to run"""
    _, run = runs.once(params_on_full_mnist)
    lines = run.stderr.splitlines()
    submitted = [line for line in lines if "Submitting job" in line]
    started = [line for line in lines if "Process started" in line][:2]
    return runs.tidy("".join(line + "\n" for line in submitted + started))


@output("jobs-list", needs=[FULL_MNIST])
def jobs_list(runs: Runs) -> str:
    sandbox, _ = runs.once(params_on_full_mnist)
    return runs.tidy(sandbox.run(JOBS_LIST).stdout)


@output("results-table", needs=[FULL_MNIST])
def results_table(runs: Runs) -> str:
    """The table of ``python -m xpkit.analyze``, up to its validation_loss
    column (the README says which columns follow)"""
    sandbox, _ = runs.once(params_on_full_mnist)
    table = sandbox.run("python -m xpkit.analyze --experiment MNIST_train").stdout
    lines = [line for line in table.splitlines() if line.startswith("|")]
    end = lines[0].index("validation_loss |") + len("validation_loss |")
    return runs.tidy("".join(line[:end] + "\n" for line in lines))
