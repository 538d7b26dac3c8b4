"""Decoding image files into one uint8 array, with the preprocessing every model input gets."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sql_frontend.errors import DataError

GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F", "P;L"}
MAX_NATIVE_SIDE = 64  # images up to this size train at their own size; larger ones are resized
DEFAULT_IMAGE_SIZE = 64


@dataclass(frozen=True)
class ImageGeometry:
    channels: int
    height: int
    width: int


def describe_missing(paths: Sequence[Path], shown: int = 3) -> str:
    listed = ", ".join(str(p) for p in paths[:shown])
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return f"{listed}{more}"


def check_files_exist(paths: Sequence[Path], column: str) -> None:
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(paths)} image files named in column {column} do not exist: {describe_missing(missing)}.",
            hint="Relative paths start at the workspace directory; fix the paths or restore the files.",
        )


def infer_geometry(paths: Sequence[Path], image_size: int | None = None, sample: int = 64) -> ImageGeometry:
    """Channels and size for a model from its training images: grayscale stays one channel;
    small images of one size keep it; other images are resized to `image_size` squares."""
    from PIL import Image, UnidentifiedImageError

    modes, sizes = set(), set()
    for path in paths[:sample]:
        try:
            with Image.open(path) as image:
                modes.add(image.mode)
                sizes.add(image.size)
        except (UnidentifiedImageError, OSError) as error:
            raise DataError(f"{path} is not a readable image: {error}") from error
    channels = 1 if modes <= GRAYSCALE_MODES else 3
    if image_size is not None:
        return ImageGeometry(channels, image_size, image_size)
    if len(sizes) == 1:
        width, height = next(iter(sizes))
        if max(width, height) <= MAX_NATIVE_SIDE:
            return ImageGeometry(channels, height, width)
    return ImageGeometry(channels, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)


def _decode(path: Path, geometry: ImageGeometry) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("L" if geometry.channels == 1 else "RGB")
        if image.size != (geometry.width, geometry.height):
            image = image.resize((geometry.width, geometry.height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if geometry.channels == 1 else array.transpose(2, 0, 1)


def load_images(paths: Sequence[Path], geometry: ImageGeometry, threads: int = 4) -> np.ndarray:
    """uint8 array N x C x H x W; a clear error names missing or unreadable files."""
    from PIL import UnidentifiedImageError

    def decode(path: Path) -> np.ndarray | Exception:
        try:
            return _decode(path, geometry)
        except (UnidentifiedImageError, OSError, ValueError) as error:
            return error

    with ThreadPoolExecutor(max_workers=threads) as pool:
        decoded = list(pool.map(decode, paths))
    failures = [(path, result) for path, result in zip(paths, decoded) if isinstance(result, Exception)]
    if failures:
        missing = [path for path, error in failures if isinstance(error, FileNotFoundError)]
        if missing:
            raise DataError(
                f"{len(missing)} image files do not exist: {describe_missing(missing)}.",
                hint="Relative paths start at the workspace directory.",
            )
        path, error = failures[0]
        raise DataError(
            f"{len(failures)} files are not readable images, e.g. {path}: {error}.",
            hint="Use JPEG, PNG or another format Pillow reads; remove or replace corrupt files.",
        )
    if not decoded:
        return np.zeros((0, geometry.channels, geometry.height, geometry.width), dtype=np.uint8)
    return np.stack(decoded)
