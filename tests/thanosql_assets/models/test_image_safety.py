"""Unusable image inputs: each raises a DataError naming the input and what is wrong, or under
on_error='skip' is left out and listed; huge images are refused from their header."""

import functools
import math
import pickle
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from thanosql.errors import DataError
from thanosql_assets.models.embedder import ImageEmbedder
from thanosql_assets.models.images import (
    MAX_IMAGE_PIXELS,
    ImageGeometry,
    SkippedImage,
    check_files_exist,
    decode_images,
    infer_geometry,
    load_images,
)
from thanosql_assets.models.simclr.backbones import build_backbone

GEOMETRY = ImageGeometry(3, 16, 16)


def save(path: Path, seed: int = 0, size: int = 16, **options) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, **options)
    return path


def encoded(tmp_path: Path, name: str) -> bytes:
    """An intact file's bytes, large enough that its first half holds the whole header."""
    return save(tmp_path / f"source-{name}", size=64).read_bytes()


@functools.cache
def huge_png_bytes(width: int, height: int) -> bytes:
    """A 1-bit PNG of one colour: a few hundred KB, gigabytes once decoded as RGB (made once: it takes a second)."""
    buffer = BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def huge_png(path: Path, width: int, height: int) -> Path:
    path.write_bytes(huge_png_bytes(width, height))
    return path


def empty(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    return tmp_path / "empty.png"


def truncated_jpeg(tmp_path):
    data = encoded(tmp_path, "cut.jpg")
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.jpg"


def truncated_png(tmp_path):
    data = encoded(tmp_path, "cut.png")
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.png"


def header_only_jpeg(tmp_path):
    (tmp_path / "stub.jpg").write_bytes(encoded(tmp_path, "stub.jpg")[:300])
    return tmp_path / "stub.jpg"


def not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("these are notes, not a photo\n")
    return tmp_path / "notes.jpg"


def directory(tmp_path):
    (tmp_path / "album.png").mkdir()
    return tmp_path / "album.png"


def missing(tmp_path):
    return tmp_path / "gone.png"


def too_large(tmp_path):
    return huge_png(tmp_path / "large.png", 8001, 8000)


def bomb(tmp_path):
    return huge_png(tmp_path / "bomb.png", 20000, 20000)


BAD_FILES = {  # maker -> what the message says is wrong
    empty: "the file is empty (0 bytes)",
    truncated_jpeg: "the image is corrupt or truncated",
    truncated_png: "the image is corrupt or truncated",
    header_only_jpeg: "its header is corrupt or truncated",
    not_an_image: "it is not an image",
    directory: "it is a directory, not an image file",
    missing: "no such file",
    too_large: "it is 8001 x 8000 pixels, over the cap of 64,000,000 pixels (8000 x 8000)",
    bomb: "pixels, over the cap of 64,000,000 pixels (8000 x 8000)",
}
NO_PATHS = {None: "it has no image path (NULL)", math.nan: "it has no image path (NULL)", "": "its image path is empty"}


@pytest.fixture
def good(tmp_path) -> list[Path]:
    return [save(tmp_path / name, seed) for seed, name in enumerate(["a.jpg", "b.png", "c.webp", "d.bmp"])]


@pytest.mark.parametrize("make", BAD_FILES, ids=lambda make: make.__name__)
def test_a_bad_file_raises_a_data_error_naming_it(tmp_path, good, make):
    bad = make(tmp_path)
    with pytest.raises(DataError) as caught:
        decode_images([good[0], bad, good[1]], GEOMETRY, column="photo")
    assert caught.value.message.startswith(f"Cannot use image {bad} (column photo): ")
    assert BAD_FILES[make] in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize("make", BAD_FILES, ids=lambda make: make.__name__)
def test_a_bad_file_is_skipped_and_listed(tmp_path, good, make):
    bad = make(tmp_path)
    decoded = decode_images([good[0], bad, good[1]], GEOMETRY, column="photo", on_error="skip")
    assert decoded.kept == [0, 2]
    assert decoded.images.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(decoded.images, load_images([good[0], good[1]], GEOMETRY))
    [skipped] = decoded.skipped
    assert (skipped.index, skipped.path) == (1, bad)
    assert BAD_FILES[make] in skipped.reason


@pytest.mark.parametrize("value", NO_PATHS, ids=repr)
def test_a_row_without_a_path_names_the_column(good, value):
    with pytest.raises(DataError) as caught:
        decode_images([good[0], value], GEOMETRY, column="photo")
    assert caught.value.message == f"Cannot use a row of column photo: {NO_PATHS[value]}."
    assert "photo IS NOT NULL" in caught.value.hint
    decoded = decode_images([good[0], value], GEOMETRY, column="photo", on_error="skip")
    assert decoded.kept == [0]
    assert decoded.skipped == [SkippedImage(1, None, NO_PATHS[value])]


def test_huge_images_are_refused_from_the_header_without_decoding(tmp_path):
    # Decoded as RGB the 20000 x 20000 image would take 1.2 GB and seconds; its header takes microseconds.
    path = bomb(tmp_path)
    assert path.stat().st_size < 5_000_000
    for attempt in (
        lambda: decode_images([path], GEOMETRY),
        lambda: infer_geometry([path]),
        lambda: load_images([path], ImageGeometry(1, 64, 64)),
    ):
        started = time.perf_counter()
        with pytest.raises(DataError, match="over the cap"):
            attempt()
        assert time.perf_counter() - started < 1


def test_a_huge_jpeg_is_refused_before_the_batch_decoder(tmp_path, good):
    side = math.isqrt(MAX_IMAGE_PIXELS) + 1
    Image.new("L", (side, side)).save(tmp_path / "large.jpg")
    started = time.perf_counter()
    decoded = decode_images([good[0], tmp_path / "large.jpg"], GEOMETRY, on_error="skip")
    assert time.perf_counter() - started < 1
    assert decoded.kept == [0]
    assert decoded.skipped[0].reason.startswith(f"it is {side} x {side} pixels, over the cap")


def test_skip_keeps_exactly_the_good_files_among_many_bad_ones(tmp_path, good):
    bad = [make(tmp_path) for make in BAD_FILES]
    values = [bad[0], good[0], None, *bad[1:5], good[1], good[2], "", *bad[5:], good[3], math.nan]
    decoded = decode_images(values, GEOMETRY, column="photo", on_error="skip")
    assert [values[index] for index in decoded.kept] == good
    np.testing.assert_array_equal(decoded.images, load_images(good, GEOMETRY))
    assert [skipped.index for skipped in decoded.skipped] == [
        index for index in range(len(values)) if index not in decoded.kept
    ]


def test_a_corrupt_jpeg_in_a_batch_of_good_ones(tmp_path):
    jpegs = [save(tmp_path / f"{number}.jpg", number) for number in range(5)]
    cut = truncated_jpeg(tmp_path)
    decoded = decode_images([*jpegs[:2], cut, *jpegs[2:]], GEOMETRY, on_error="skip")
    assert decoded.kept == [0, 1, 3, 4, 5]
    np.testing.assert_array_equal(decoded.images, load_images(jpegs, GEOMETRY))
    with pytest.raises(DataError, match=f"Cannot use image {cut}: the image is corrupt or truncated"):
        load_images([*jpegs, cut], GEOMETRY)


def test_a_pandas_column_with_nulls_and_its_own_index(good):
    column = pd.Series([str(good[0]), None, str(good[1])], index=[10, 20, 30])
    decoded = decode_images(column, GEOMETRY, column="photo", on_error="skip")
    assert decoded.kept == [0, 2]
    assert decoded.skipped == [SkippedImage(1, None, "it has no image path (NULL)")]


def test_an_animated_gif_decodes_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), (shade, shade, shade)) for shade in (10, 120, 240)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    [image] = load_images([tmp_path / "anim.gif"], GEOMETRY)
    assert image.shape == (3, 16, 16)
    assert abs(int(image.mean()) - 10) <= 2


def test_infer_geometry_skips_or_names_bad_files(tmp_path, good):
    bad = empty(tmp_path)
    with pytest.raises(DataError, match=f"Cannot use image {bad} \\(column photo\\): the file is empty"):
        infer_geometry([bad, good[0]], column="photo")
    assert infer_geometry([None, bad, good[0]], column="photo", on_error="skip") == ImageGeometry(3, 16, 16)
    with pytest.raises(DataError, match="None of the 2 inputs is a usable image"):
        infer_geometry([None, bad], column="photo", on_error="skip")


def test_check_files_exist_names_null_rows_and_directories(tmp_path, good):
    with pytest.raises(DataError, match="1 of 2 rows have no image path in column photo"):
        check_files_exist([good[0], None], "photo")
    folder = directory(tmp_path)
    with pytest.raises(DataError, match=f"name no file: {folder} \\(a directory\\)"):
        check_files_exist([good[0], folder], "photo")


def test_on_error_must_be_raise_or_skip(good):
    with pytest.raises(ValueError, match="on_error"):
        decode_images(good, GEOMETRY, on_error="ignore")


@pytest.fixture
def embedder() -> ImageEmbedder:
    torch.manual_seed(0)
    return ImageEmbedder(build_backbone("small_cnn", 3), GEOMETRY, torch.full((3,), 0.5), torch.full((3,), 0.25)).eval()


def test_embed_files_checked_gives_vectors_for_exactly_the_good_files(tmp_path, good, embedder):
    values = [not_an_image(tmp_path), good[0], None, good[1], empty(tmp_path), good[2], good[3]]
    embedded = embedder.embed_files_checked(values, batch_size=2, column="photo", on_error="skip", chunk=3)
    assert embedded.kept == [1, 3, 5, 6]
    assert [skipped.index for skipped in embedded.skipped] == [0, 2, 4]
    assert embedded.skipped[2] == SkippedImage(4, values[4], "the file is empty (0 bytes)")
    assert embedded.vectors.shape == (4, embedder.embedding_dim)
    np.testing.assert_allclose(embedded.vectors, embedder.embed_files(good, batch_size=2), rtol=1e-5, atol=1e-5)


def test_embed_files_keeps_its_signature_and_raises_for_a_bad_file(tmp_path, good, embedder):
    assert embedder.embed_files(good, batch_size=2).shape == (len(good), embedder.embedding_dim)
    bad = truncated_png(tmp_path)
    with pytest.raises(DataError, match=f"Cannot use image {bad}: the image is corrupt or truncated"):
        embedder.embed_files([*good, bad], batch_size=2)
    assert embedder.embed_files([]).shape == (0, embedder.embedding_dim)


def test_a_pickled_embedder_keeps_working(good, embedder):
    restored = pickle.loads(pickle.dumps(embedder))
    assert restored.embed_files_checked(good, on_error="skip").kept == [0, 1, 2, 3]


@pytest.mark.parametrize("channels", [1, 3])
def test_a_single_frame_gif_decodes_to_the_geometrys_channels(tmp_path, channels):
    gif = save(tmp_path / "one.gif")  # a palette image, which torchvision decodes as RGB whatever the mode asked
    geometry = ImageGeometry(channels, 16, 16)
    (image,) = load_images([gif], geometry)
    with Image.open(gif) as reference:
        expected = np.asarray(reference.convert("L" if channels == 1 else "RGB"), dtype=np.int16)
    assert image.shape == (channels, 16, 16)
    assert np.abs(image.astype(np.int16) - (expected[None] if channels == 1 else expected.transpose(2, 0, 1))).max() <= 2
