"""The seed tutorial as a notebook, run cell by cell in a real Jupyter kernel (nbclient), as
"Run All" runs it: quiet apart from progress, and stopped by the first failing cell.

In a notebook the magic prints progress lines (the `thanosql.progress` logger, e.g. "Building
model...", "epoch 1/1: loss ...") to stdout, under the cell as the seed shows them; so anything on
stderr, which Jupyter shows in red, is noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.seeds import seed_cells

KERNEL = "thanosql-test"


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory):
    """A kernelspec for this interpreter (the project's venv) where Jupyter looks for kernels.

    The kernel inherits this process's environment: THANOSQL_DATASET_MIRROR from tests/conftest.py.
    """
    prefix = tmp_path_factory.mktemp("jupyter")
    install_kernelspec(kernel_name=KERNEL, prefix=str(prefix))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        yield


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])


def run(nb: nbformat.NotebookNode, cwd: Path) -> None:
    NotebookClient(nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(cwd)}}).execute()


def statement_cell(nb: nbformat.NotebookNode, start: str):
    (cell,) = [cell for cell in nb.cells if cell.source.startswith(f"%%thanosql\n{start}")]
    return cell


def streams(cell, name: str) -> str:
    return "".join(output.text for output in cell.outputs if output.output_type == "stream" and output.name == name)


@pytest.fixture(scope="module")
def tutorial(jupyter_path, tmp_path_factory):
    """The seed notebook after "Run All" on a new workspace, and that workspace."""
    root = tmp_path_factory.mktemp("notebook")
    home = root / "workspace"
    nb = notebook(
        "%load_ext thanosql",
        f"%thanosql home={home}",
        "%thanosql API_TOKEN=test-token",
        *(f"%%thanosql\n{cell}" for cell in seed_cells("001")),
        *(f"%%thanosql\n{cell}" for cell in CLASSIFICATION_CELLS),
    )
    run(nb, root)
    return nb, home


# After the seed tutorial: a classifier fine-tuned from its search model (lower-case keywords,
# which also keeps them apart from the seed's cells in `statement_cell`).
CLASSIFICATION_CELLS = (
    "build model digit_classifier using ResNet18 options (base_model='my_image_search_model', max_epochs=1) as select * from mnist_train",
    "print image as (select image_path, predicted, confidence from (predict using digit_classifier as select * from mnist_test) limit 2)",
    "evaluate using digit_classifier as select * from mnist_test",
)


def test_every_cell_runs(tutorial):
    nb, _ = tutorial
    assert [cell.execution_count for cell in nb.cells] == list(range(1, len(nb.cells) + 1))
    assert not [output for cell in nb.cells for output in cell.outputs if output.output_type == "error"]


def test_no_cell_writes_to_stderr(tutorial):
    """No Dagster RuntimeWarning, tqdm IProgress warning or MLflow registration line: besides
    results, a cell shows only progress lines, and those are on stdout."""
    nb, _ = tutorial
    noisy = [(cell.source, streams(cell, "stderr")) for cell in nb.cells if streams(cell, "stderr")]
    assert noisy == []


def test_progress_and_success_lines_show_under_their_cells(tutorial):
    nb, _ = tutorial
    printed = streams(statement_cell(nb, "BUILD MODEL"), "stdout")
    assert "Building model..." in printed and "epoch 1/1: loss" in printed
    assert printed.rstrip().endswith("Success")


def test_select_cell_shows_a_table(tutorial):
    nb, _ = tutorial
    (result,) = [output for output in statement_cell(nb, "SELECT").outputs if output.output_type == "execute_result"]
    assert "<table" in result.data["text/html"] and "6782.jpg" in result.data["text/html"]
    assert "image_path" in result.data["text/plain"]


def test_print_image_cell_shows_four_images_under_their_paths(tutorial):
    nb, home = tutorial
    printed = statement_cell(nb, "PRINT IMAGE")
    images = [output for output in printed.outputs if output.output_type == "display_data" and "image/jpeg" in output.data]
    assert len(images) == 4
    paths = [line for line in streams(printed, "stdout").splitlines() if line.endswith(".jpg")]
    assert paths[0] == str(home / "thanosql-dataset/mnist_data/test/923.jpg") and len(paths) == 4


def test_classification_cells_caption_pictures_and_show_metrics(tutorial):
    nb, home = tutorial
    printed = statement_cell(nb, "print image")
    images = [output for output in printed.outputs if output.output_type == "display_data" and "image/jpeg" in output.data]
    lines = streams(printed, "stdout").splitlines()
    assert len(images) == 2 and len([line for line in lines if line.startswith("predicted ")]) == 2
    (result,) = [output for output in statement_cell(nb, "evaluate").outputs if output.output_type == "execute_result"]
    assert "macro-f1-score" in result.data["text/plain"]


def test_python_api_searches_quietly(tutorial, capfd):
    """A program's searches print nothing ("Searching..." on every call was noise on its stderr)."""
    import thanosql

    _, home = tutorial
    conn = thanosql.connect(home)
    rows = conn.execute(seed_cells("001")[6])
    assert len(rows) == 200
    assert capfd.readouterr() == ("", "")


def test_a_failing_cell_stops_run_all_with_the_thanosql_message(jupyter_path, tmp_path):
    nb = notebook(f"%load_ext thanosql\n%thanosql home={tmp_path / 'workspace'}", "%%thanosql\nSELECT * FROM no_such_table", "print('after')")
    with pytest.raises(CellExecutionError) as raised:
        run(nb, tmp_path)
    assert raised.value.ename == "ObjectNotFoundError"
    (error,) = [output for output in nb.cells[1].outputs if output.output_type == "error"]
    assert error.traceback[0].startswith("ThanoSQL error: line 1:15: Table 'no_such_table' does not exist")
    assert not any("Traceback" in line or os.sep + "site-packages" in line for line in error.traceback)
    assert nb.cells[2].execution_count is None and nb.cells[2].outputs == []


def test_seed_004_folder_to_labels_in_a_notebook(jupyter_path, tmp_path):
    examples = Path(__file__).resolve().parents[3] / "examples"
    home = tmp_path / "workspace"
    nb = notebook(
        # In its own process, so the kernel first meets transformers in the UPLOAD cell.
        f"import subprocess, sys\nsubprocess.run([sys.executable, {str(examples / 'make_tiny_classifier.py')!r}, {str(home)!r}], check=True)",
        "%load_ext thanosql",
        f"%thanosql home={home}",
        "%%thanosql\nUPLOAD MODEL vit OPTIONS (framework='huggingface') FROM \"models/vit\"",
        "%%thanosql\nCREATE TABLE labels USING vit OPTIONS (path_type='folder', data_type='image') FROM 'photos'",
        "%%thanosql\nSELECT filename AS image_name, predicted AS result FROM labels ORDER BY filename",
    )
    run(nb, tmp_path)
    for start in ("UPLOAD", "CREATE TABLE"):
        assert streams(statement_cell(nb, start), "stderr") == "", streams(statement_cell(nb, start), "stderr")
    (result,) = [output for output in statement_cell(nb, "SELECT").outputs if output.output_type == "execute_result"]
    assert "[10 rows x 2 columns]" in result.data["text/plain"] or result.data["text/plain"].count(".jpg") == 10
    assert "registered in MLflow" in streams(statement_cell(nb, "UPLOAD"), "stdout")
