"""Decoding image files into uint8 arrays, with the preprocessing every model input gets.

Training images, table images (CONVERT) and query images (SEARCH) all go through
`load_images`, so a model always sees the same pixels for the same file. JPEG, PNG, GIF and
WebP decode with torchvision (libjpeg-turbo), JPEGs in batches: on this machine 25k small
JPEGs/s against 15k/s one by one and 5.5k/s with Pillow. Anything else, or anything
torchvision refuses, goes through Pillow, which also names the problem when a file is not an
image.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thanosql.errors import DataError

GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F", "P;L"}
MAX_NATIVE_SIDE = 64  # images up to this size train at their own size; larger ones are resized
DEFAULT_IMAGE_SIZE = 64
_TORCHVISION_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
_JPEG_SUFFIXES = {".jpg", ".jpeg"}
_JPEG_BATCH = 256


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


def _read_mode(geometry: ImageGeometry):
    from torchvision.io import ImageReadMode

    return ImageReadMode.GRAY if geometry.channels == 1 else ImageReadMode.RGB


def _fit(image, geometry: ImageGeometry) -> np.ndarray:
    import torchvision.transforms.v2.functional as F

    if tuple(image.shape[-2:]) != (geometry.height, geometry.width):
        image = F.resize(image, [geometry.height, geometry.width], antialias=True)
    return image.numpy()


def _decode_torchvision(path: Path, geometry: ImageGeometry) -> np.ndarray:
    import torch
    from torchvision.io import decode_image

    data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    return _fit(decode_image(data, mode=_read_mode(geometry)), geometry)


def _decode_jpeg_batch(paths: Sequence[Path], geometry: ImageGeometry) -> list[np.ndarray] | None:
    """Decoded JPEGs, or None when any of them fails (the caller then decodes one by one)."""
    import torch
    from torchvision.io import decode_jpeg

    try:
        data = [torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8) for path in paths]
        return [_fit(image, geometry) for image in decode_jpeg(data, mode=_read_mode(geometry))]
    except (RuntimeError, OSError):
        return None


def _decode_pillow(path: Path, geometry: ImageGeometry) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("L" if geometry.channels == 1 else "RGB")
        if image.size != (geometry.width, geometry.height):
            image = image.resize((geometry.width, geometry.height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if geometry.channels == 1 else array.transpose(2, 0, 1)


def decode(path: Path, geometry: ImageGeometry) -> np.ndarray:
    """One image as uint8 C x H x W; raises DataError when it is missing or not an image."""
    from PIL import UnidentifiedImageError

    if path.suffix.lower() in _TORCHVISION_SUFFIXES:
        try:
            return _decode_torchvision(path, geometry)
        except (RuntimeError, OSError):
            pass  # e.g. a mislabelled, corrupt or missing file: Pillow decides, and explains
    try:
        return _decode_pillow(path, geometry)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(
            f"{path} is not a readable image: {error}.",
            hint="Use JPEG, PNG or another format Pillow reads; remove or replace corrupt files.",
        ) from None


def load_images(paths: Sequence[Path], geometry: ImageGeometry) -> np.ndarray:
    """uint8 array N x C x H x W; a clear error names missing or unreadable files."""
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(paths)} image files do not exist: {describe_missing(missing)}.",
            hint="Relative paths start at the workspace directory.",
        )
    out = np.empty((len(paths), geometry.channels, geometry.height, geometry.width), dtype=np.uint8)
    pending = []  # positions not decoded in a JPEG batch
    jpegs = [index for index, path in enumerate(paths) if path.suffix.lower() in _JPEG_SUFFIXES]
    for start in range(0, len(jpegs), _JPEG_BATCH):
        batch = jpegs[start : start + _JPEG_BATCH]
        decoded = _decode_jpeg_batch([paths[index] for index in batch], geometry)
        if decoded is None:
            pending.extend(batch)
            continue
        for index, image in zip(batch, decoded):
            out[index] = image
    is_jpeg = set(jpegs)
    pending.extend(index for index in range(len(paths)) if index not in is_jpeg)
    failures: list[tuple[Path, DataError]] = []
    for index in pending:
        try:
            out[index] = decode(paths[index], geometry)
        except DataError as error:
            failures.append((paths[index], error))
    if failures:
        path, error = failures[0]
        raise DataError(
            f"{len(failures)} files are not readable images, e.g. {error.message}",
            hint=error.hint,
        )
    return out
