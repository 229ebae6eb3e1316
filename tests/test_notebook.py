"""notebooks/results.ipynb, executed with nbclient against a workspace where
the tutorial ran (params.yaml twice, seeds.yaml once, on the sample): what
its cells show."""

import json

import nbformat
import pytest
from conftest import BIN, REPO, Sandbox

NOTEBOOK = REPO / "notebooks" / "results.ipynb"
ON_THE_SAMPLE = "-c n_validation=1000"

EXECUTE = """
import sys
import nbformat
from nbclient import NotebookClient

notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
nbformat.write(notebook, sys.argv[2])
"""


def test_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook's cells once executed (code cells only), and the sandbox"""
    sandbox = Sandbox(tmp_path_factory.mktemp("notebook"))
    for yaml in ("params.yaml", "params.yaml", "seeds.yaml"):
        sandbox.run(f"experimaestro run-experiment {yaml} {ON_THE_SAMPLE}")
    out = sandbox.home / "executed.ipynb"
    sandbox.run(
        [str(BIN / "python"), "-c", EXECUTE, str(NOTEBOOK), str(out)],
        cwd=sandbox.home,  # (where a user opens it: not the repository)
    )
    notebook = nbformat.read(out, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code"], sandbox


def shown(cell, kind="text/plain") -> str:
    """What a cell shows of a kind (its result), joined"""
    return "".join(
        output.get("data", {}).get(kind, "")
        for output in cell.outputs
        if output.output_type in ("execute_result", "display_data")
    )


def test_no_cell_fails(executed):
    cells, _ = executed
    errors = [o for cell in cells for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors


def html_rows(html: str) -> list[str]:
    """The body rows of a DataFrame shown as HTML"""
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return body.split("<tr>")[1:]


def test_the_table_of_the_latest_run(executed):
    cells, _ = executed
    table = shown(cells[1], "text/html")
    rows = html_rows(table)
    assert len(rows) == 2, table  # the two models of params.yaml
    assert all(row.count("DONE") == 2 for row in rows)
    assert "test_accuracy" in table and "n_layers" in table


@pytest.mark.parametrize("index", [2, 3], ids=["accuracy", "curves"])
def test_a_figure_per_plot(executed, index):
    cells, _ = executed
    [figure] = [o for o in cells[index].outputs if "image/png" in o.get("data", {})]
    assert len(figure["data"]["image/png"]) > 1000


def test_the_seeds_mean_and_std(executed):
    cells, _ = executed
    seeds = shown(cells[4], "text/html")
    assert "test_accuracy_mean" in seeds and "test_accuracy_std" in seeds
    # Two grid points, each learnt with 3 seeds (n_seeds, after the tags)
    rows = html_rows(seeds)
    assert len(rows) == 2, seeds
    assert all("<td>3</td>" in row for row in rows)


def test_two_runs_compared(executed):
    cells, sandbox = executed
    runs = sorted(
        path.name
        for path in (sandbox.workspace / "experiments" / "MNIST_train").iterdir()
        if path.is_dir() and not path.is_symlink()
    )
    compared = shown(cells[5])
    assert all(run in compared for run in runs[-2:]), compared
    assert compared.count("test_accuracy") == 1
    json.dumps(compared)  # (text only)
