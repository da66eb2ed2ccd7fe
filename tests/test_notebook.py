"""notebooks/gradcam_review.ipynb: stored without outputs, executed headless on real photos and FER2013."""

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "gradcam_review.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])


def test_notebook_runs_on_photos_and_private_test(tiny_weights, jaffe_dir, cache_dir, monkeypatch):
    # the kernel inherits this environment: the session checkpoint, 4 JAFFE faces, 300 PrivateTest faces, and
    # FER_CACHE_DIR (set by the cache_dir fixture), so the kernel reads the session's parsed FER2013
    monkeypatch.setenv("FER_CHECKPOINT", str(tiny_weights))
    monkeypatch.setenv("FER_PHOTOS", str(jaffe_dir))
    monkeypatch.setenv("FER_MAX_FACES", "4")
    monkeypatch.setenv("FER_EVAL_MAX_FACES", "300")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # "python3" is ipykernel's own spec; jupyter_client starts it with sys.executable, i.e. this venv's python
    client = NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError (with the traceback) if any cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert (
        f"interpreter: {sys.executable}" in text or f"interpreter: {Path(sys.executable).resolve()}" in text
    )
    assert f"checkpoint: {tiny_weights}" in text and "4 face(s)" in text and "skipped: none" in text
    assert "'acc':" in text and "'macro_f1':" in text and "300 PrivateTest faces" in text
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == 3  # panels, confusion matrix, mistakes gallery
    assert not [o for o in outputs if o.output_type == "error"]
