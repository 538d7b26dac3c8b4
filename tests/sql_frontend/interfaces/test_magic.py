"""Jupyter: `%load_ext thanosql` and `%%thanosql` cells as written in the tutorial."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from IPython import get_ipython
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output


@pytest.fixture(scope="module")
def ipython():
    shell = start_ipython() or get_ipython()  # one global test shell per process
    shell.run_line_magic("load_ext", "thanosql")
    return shell


def test_api_token_line_is_accepted_and_stored(ipython):
    ipython.run_line_magic("thanosql", "API_TOKEN=abc123")
    magics = ipython.magics_manager.registry["ThanoSQLMagics"]
    assert magics.api_token == "abc123"


def test_cell_returns_a_dataframe(ipython, tutorial_home):
    ipython.run_line_magic("thanosql", f"home={tutorial_home}")
    result = ipython.run_cell_magic("thanosql", "", "SELECT * \nFROM mnist_train \nLIMIT 5")
    assert isinstance(result, pd.DataFrame)
    assert list(result.columns) == ["image_path", "filename", "label"] and len(result) == 5


def test_print_image_shows_images_inline_under_their_paths(ipython, tutorial_home):
    ipython.run_line_magic("thanosql", f"home={tutorial_home}")
    cell = (
        "PRINT IMAGE \nAS (\n SELECT image_path, my_image_search_model_simclr_similarity1 \n FROM (\n"
        "  SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' \n  USING my_image_search_model \n"
        "  AS \n  SELECT * \n  FROM mnist_test\n  )\n ORDER BY my_image_search_model_simclr_similarity1 DESC \n LIMIT 4\n )"
    )
    with capture_output() as captured:
        result = ipython.run_cell_magic("thanosql", "", cell)
    assert result is None
    printed = [line for line in captured.stdout.splitlines() if line.endswith(".jpg")]
    assert printed[0] == str(tutorial_home / "thanosql-dataset/mnist_data/test/923.jpg")
    assert len(printed) == 4
    images = [output for output in captured.outputs if "image/jpeg" in output.data]
    assert len(images) == 4
    assert "Searching..." in captured.stdout


def test_print_image_embeds_thumbnails_and_says_what_it_cannot_show(ipython, scratch_conn):
    import io

    import numpy as np
    from PIL import Image

    home = Path(scratch_conn.home)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1500, 2000, 3), dtype=np.uint8)).save(home / "photo.jpg", quality=95)
    Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8)).save(home / "scan.bmp")
    (home / "broken.jpg").write_text("not a picture")
    ipython.run_line_magic("thanosql", f"home={home}")
    cell = "PRINT IMAGE AS (SELECT * FROM (VALUES ('photo.jpg'), ('scan.bmp'), ('broken.jpg'), ('gone.jpg')) AS t(image_path))"
    with capture_output() as captured:
        ipython.run_cell_magic("thanosql", "", cell)
    pictures = [output.data["image/jpeg"] for output in captured.outputs if "image/jpeg" in output.data]
    assert len(pictures) == 2  # the photo and the BMP, which a browser could not show as the file
    sizes = [Image.open(io.BytesIO(picture if isinstance(picture, bytes) else __import__("base64").b64decode(picture))).size for picture in pictures]
    assert sizes == [(224, 168), (150, 200)]  # the photo reduced; the small scan enlarged 5x, pixel for pixel
    assert "(cannot show this image: not an image)" in captured.stdout
    assert "(cannot show this image: no such file)" in captured.stdout
    with capture_output() as captured:
        ipython.run_cell_magic("thanosql", "", "PRINT IMAGE AS (SELECT image_path FROM mnist_train WHERE false)")
    assert captured.stdout.strip() == "(no images: the query returned no rows)"


def test_an_interrupted_cell_says_so_in_one_line_and_changes_nothing(ipython, scratch_conn):
    import os
    import signal
    import threading

    from thanosql.errors import ThanoSQLError

    ipython.run_line_magic("thanosql", f"home={scratch_conn.home}")
    stop_button = threading.Timer(4.0, os.kill, (os.getpid(), signal.SIGINT))  # the notebook's stop button, while training
    stop_button.start()
    try:
        with pytest.raises(ThanoSQLError) as caught:
            ipython.run_cell_magic("thanosql", "", "BUILD MODEL stopped USING SimCLR OPTIONS (max_epochs=500) AS SELECT * FROM mnist_train")
    finally:
        stop_button.cancel()  # a BUILD that failed early must not leave the signal to a later test
    assert caught.value._render_traceback_() == [
        "ThanoSQL error: Interrupted: the statement stopped, and the workspace holds what it held before it.",
        "  hint: Statements before it in the cell ran; run the cell again to run the rest.",
    ]
    assert "stopped" not in set(ipython.run_cell_magic("thanosql", "", "LIST MODEL")["name"])


def test_a_failing_cell_raises_and_shows_only_the_message(ipython, tutorial_home):
    from thanosql.errors import ObjectNotFoundError

    ipython.run_line_magic("thanosql", f"home={tutorial_home}")
    with pytest.raises(ObjectNotFoundError) as caught:
        ipython.run_cell_magic("thanosql", "", "SELECT * FROM nope")
    assert caught.value._render_traceback_()[0].startswith("ThanoSQL error: line 1:15: Table 'nope' does not exist")


def test_statements_without_rows_print_success(ipython, scratch_conn):
    ipython.run_line_magic("thanosql", f"home={scratch_conn.home}")
    with capture_output() as captured:
        result = ipython.run_cell_magic(
            "thanosql", "", 'COPY mnist_train \nOPTIONS (overwrite=True)\nFROM "thanosql-dataset/mnist_data/mnist_train.csv"'
        )
    assert result is None
    assert "Success" in captured.stdout


def test_list_in_a_cell_returns_the_models(ipython, tutorial_home):
    ipython.run_line_magic("thanosql", f"home={tutorial_home}")
    result = ipython.run_cell_magic("thanosql", "", "LIST MODEL")
    assert list(result["name"]) == ["my_image_search_model"] and list(result["class_name"]) == ["SimCLR"]


def test_managing_statements_run_in_cells(ipython, scratch_conn):
    ipython.run_line_magic("thanosql", f"home={scratch_conn.home}")
    with capture_output() as captured:
        for cell in (
            "CREATE TABLE eights AS SELECT * FROM mnist_train WHERE label = 8",
            "UPDATE eights SET label = 0",
            "DROP TABLE eights",
            "DELETE MODEL my_image_search_model",
        ):
            assert ipython.run_cell_magic("thanosql", "", cell) is None
    assert captured.stdout.count("Success") == 4
    assert ipython.run_cell_magic("thanosql", "", "LIST MODEL").empty
    assert list(ipython.run_cell_magic("thanosql", "", "LIST TABLE")["table_name"]) == ["mnist_test", "mnist_train"]
