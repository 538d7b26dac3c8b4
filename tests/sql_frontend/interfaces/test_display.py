"""The CLI prints results as Jupyter shows a DataFrame: every row up to 60, else the first and
last five, with embeddings shortened."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sql_frontend.interfaces.display import format_table


def test_up_to_sixty_rows_are_all_printed_and_more_are_cut_to_the_first_and_last_five():
    eleven = format_table(pd.DataFrame({"table_name": [f"table_{i}" for i in range(11)]}))
    assert all(f"table_{i}" in eleven for i in range(11)) and "..." not in eleven
    many = format_table(pd.DataFrame({"n": range(61)}))
    shown = [int(line.split()[-1]) for line in many.splitlines()[1:] if line.strip() and line.split()[-1].isdigit()]
    assert shown == [0, 1, 2, 3, 4, 56, 57, 58, 59, 60] and "..." in many and "[61 rows x 1 columns]" in many


def test_no_rows_print_the_columns():
    assert format_table(pd.DataFrame({"image_path": [], "label": []})) == "image_path  label\n\n[0 rows x 2 columns]"


def test_embeddings_are_shortened():
    text = format_table(pd.DataFrame({"v": [np.arange(128, dtype=np.float32)]}))
    assert "[0, 1, 2, 3, ...]" in text


def test_arrays_of_text_and_integers_print_as_lists_not_as_embeddings():
    text = format_table(pd.DataFrame({"names": [np.array(["a", "b"], dtype=object)], "ids": [np.array([16777217, 5], dtype=np.int32)]}))
    assert "['a', 'b']" in text and "[16777217, 5]" in text


def test_arrays_keep_their_element_types_over_the_wire():
    import json

    from sql_frontend.interfaces import wire

    rows = pd.DataFrame(
        {
            "names": [np.array(["a", "b"], dtype=object), ["image_path"]],
            "ids": [np.array([16777217, 5], dtype=np.int32), np.ma.masked_array([7, 0], mask=[False, True], dtype=np.int32)],
            "v": [np.array([0.5], np.float32), None],
        }
    )
    back = wire.decode(json.loads(json.dumps(wire.encode(rows)))["result"])
    assert back["names"].map(list).tolist() == [["a", "b"], ["image_path"]]  # text of any length
    assert back["ids"][0].tolist() == [16777217, 5] and back["ids"][0].dtype == np.int32
    assert back["ids"][1].tolist() == [7, None]  # a NULL element (DuckDB's masked arrays) stays NULL
    assert back["v"][0].dtype == np.float32 and back["v"][1] is None
    assert "[7, None]" in format_table(rows)


def test_the_picture_says_which_images_it_could_not_show_and_why(tmp_path):
    from PIL import Image

    from sql_frontend.interfaces.display import contact_sheet

    Image.new("L", (28, 28), 255).save(tmp_path / "ok.png")
    (tmp_path / "text.jpg").write_text("not an image")
    images = [(str(tmp_path / name), "") for name in ("ok.png", "text.jpg", "gone.jpg")]
    sheet, unshown = contact_sheet(images, tmp_path / "out")
    assert sheet.is_file() and unshown == [(str(tmp_path / "text.jpg"), "not an image"), (str(tmp_path / "gone.jpg"), "no such file")]


def test_thumbnails_are_upright_scaled_and_never_empty(tmp_path):
    import io

    from PIL import Image

    from sql_frontend.interfaces.display import jpeg_thumbnail

    def thumbnail(path) -> Image.Image:
        data, why = jpeg_thumbnail(str(path))
        assert why is None
        return Image.open(io.BytesIO(data))

    photo = Image.new("RGB", (300, 100), "red")
    exif = photo.getexif()
    exif[0x0112] = 6  # taken with the phone turned: shown rotated a quarter turn
    photo.save(tmp_path / "turned.jpg", exif=exif)
    assert thumbnail(tmp_path / "turned.jpg").size == (75, 224)
    Image.fromarray(np.zeros((1400, 3), np.uint8)).save(tmp_path / "strip.png")
    assert thumbnail(tmp_path / "strip.png").size == (1, 224)
    Image.fromarray((np.arange(100, dtype=np.uint16).reshape(10, 10) * 600)).save(tmp_path / "deep.png")  # 16-bit grayscale
    assert 80 < np.asarray(thumbnail(tmp_path / "deep.png")).mean() < 160  # its range, not clipped to white
