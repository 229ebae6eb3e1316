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


@output("jobs-list", needs=[FULL_MNIST])
def jobs_list(runs: Runs) -> str:
    sandbox, _ = runs.once(params_on_full_mnist)
    return runs.tidy(sandbox.run(JOBS_LIST).stdout)


@output("results-table", needs=[FULL_MNIST])
def results_table(runs: Runs) -> str:
    """The table of ``python -m xpkit.analyze``, up to its validation_loss
    column (the README says which columns follow)"""
    sandbox, _ = runs.once(params_on_full_mnist)
    table = sandbox.run("python -m xpkit.analyze").stdout
    lines = [line for line in table.splitlines() if line.startswith("|")]
    end = lines[0].index("validation_loss |") + len("validation_loss |")
    return runs.tidy("".join(line[:end] + "\n" for line in lines))
