"""Decoding image files into uint8 arrays, with the preprocessing every model input gets.

Training images, table images (CONVERT) and query images (SEARCH) all go through
`decode_images`, so a model always sees the same pixels for the same file. JPEG, PNG, GIF and
WebP decode with torchvision (libjpeg-turbo), JPEGs in batches: on this machine 25k small
JPEGs/s against 15k/s one by one and 5.5k/s with Pillow. Anything else, or anything
torchvision refuses, goes through Pillow, which also names the problem when a file is not an
image.

Every input is checked before it is decoded: a row with no path, a missing file, a directory,
an empty file, a file that is not an image, an image over `MAX_IMAGE_PIXELS` (from its header)
and a corrupt or truncated image each raise a DataError naming the file and what is wrong, or,
with on_error='skip', are left out and listed as `SkippedImage`s for the caller to report.
"""

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import numpy as np

from thanosql.errors import DataError

GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F", "P;L"}
MAX_NATIVE_SIDE = 64  # images up to this size train at their own size; larger ones are resized
DEFAULT_IMAGE_SIZE = 64
# Decoding allocates width x height x channels bytes before the image is resized to the model's
# input size, and a small file can hold a huge image: a 20000 x 20000 PNG of one colour is a few
# hundred KB on disk and 1.2 GB as RGB. 64 megapixels (192 MB as RGB) holds the photos of
# current cameras; larger images are refused from their header, before any pixel is decoded.
MAX_IMAGE_PIXELS = 8000 * 8000
_CAP = f"the cap of {MAX_IMAGE_PIXELS:,} pixels (8000 x 8000)"
_TORCHVISION_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
_JPEG_SUFFIXES = {".jpg", ".jpeg"}
_BLOCK = 256  # files read, checked and decoded together (one JPEG batch): bounds the bytes held

OnError = Literal["raise", "skip"]

_HINT_MISSING = "Relative paths start at the workspace directory; fix the path or restore the file."
_HINT_DIRECTORY = "Name one image file per row, not a folder."
_HINT_UNREADABLE = "Make the file readable by the server (check its permissions)."
_HINT_BROKEN = "Replace the file with an intact copy, or leave its row out."
_HINT_FORMAT = "Use JPEG, PNG or another format Pillow reads, or leave rows naming other files out."
_HINT_TOO_LARGE = (
    f"Downscale the image to at most {MAX_IMAGE_PIXELS:,} pixels (models see it resized to their "
    "input size anyway), or leave its row out."
)


@dataclass(frozen=True)
class ImageGeometry:
    """What a model sees: `channels` x `height` x `width` images, and how an image of any size
    becomes one (`resize`, as image processors of pretrained models do it):
    () resizes it straight to height x width; (S,) resizes its shorter side to S, keeping its
    aspect, then cuts the centre; (H, W) resizes it straight to H x W, then cuts the centre.
    Resampling is bilinear, or bicubic where a model's processor says so (both antialiased)."""

    channels: int
    height: int
    width: int
    resize: tuple[int, ...] = ()
    resample: Literal["bilinear", "bicubic"] = "bilinear"


@dataclass(frozen=True)
class SkippedImage:
    """An input left out under on_error='skip'."""

    index: int  # its position in the inputs given
    path: Path | None  # None when the row names no file (NULL)
    reason: str  # what is wrong, e.g. "the file is empty (0 bytes)"


@dataclass(frozen=True)
class DecodedImages:
    """The usable inputs' images, and which inputs they are."""

    images: np.ndarray  # uint8 K x C x H x W, in the order of the inputs
    kept: list[int]  # the position in the inputs of each image: K entries, ascending
    skipped: list[SkippedImage]  # the other inputs, ascending; empty under on_error='raise'


class _Unusable(Exception):
    """Why one input cannot be used; becomes a DataError or a SkippedImage."""

    def __init__(self, reason: str, hint: str):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def _data_error(skipped: SkippedImage, hint: str, column: str | None) -> DataError:
    of_column = f" of column {column}" if column else ""
    if skipped.path is None:
        return DataError(f"Cannot use a row{of_column}: {skipped.reason}.", hint=hint)
    in_column = f" (column {column})" if column else ""
    return DataError(f"Cannot use image {skipped.path}{in_column}: {skipped.reason}.", hint=hint)


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")


def _names_a_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and os.fspath(value) != ""


def _no_path_hint(column: str | None) -> str:
    if column is None:
        return "Give every row an image path, or leave the rows without one out."
    return f"Fill in the paths, or leave those rows out, e.g. WHERE {column} IS NOT NULL AND {column} <> ''."


def _as_path(value: Any, column: str | None) -> Path:
    """The file an input names; raises _Unusable for NULL (None, NaN), empty and non-path values."""
    if _names_a_path(value):
        return value if isinstance(value, Path) else Path(value)
    if isinstance(value, (str, os.PathLike)):
        reason = "its image path is empty"
    elif value is None or (isinstance(value, float) and math.isnan(value)):  # pandas shows SQL NULL as either
        reason = "it has no image path (NULL)"
    else:
        reason = f"it holds {value!r}, not an image path"
    raise _Unusable(reason, _no_path_hint(column))


def _read(path: Path) -> bytes:
    """The bytes of a file; raises _Unusable when it is missing, a directory, unreadable or empty."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _Unusable("no such file", _HINT_MISSING) from None
    except IsADirectoryError:
        raise _Unusable("it is a directory, not an image file", _HINT_DIRECTORY) from None
    except OSError as error:
        raise _Unusable(f"the file cannot be read ({error.strerror})", _HINT_UNREADABLE) from None
    if not data:
        raise _Unusable("the file is empty (0 bytes)", _HINT_BROKEN)
    return data


def _check_header(data: bytes) -> tuple[str, tuple[int, int]]:
    """The image's mode and (width, height), from its header alone; raises _Unusable when the file
    is not an image, its header is broken, or it has more than MAX_IMAGE_PIXELS pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as image:  # reads the header only
            mode, (width, height) = image.mode, image.size
    except UnidentifiedImageError:
        raise _Unusable("it is not an image (Pillow recognizes no image format in it)", _HINT_FORMAT) from None
    except Image.DecompressionBombError:
        # Pillow refuses to open images far over its own limit, so their exact size is not known.
        pixels = 2 * Image.MAX_IMAGE_PIXELS
        raise _Unusable(f"it has more than {pixels:,} pixels, over {_CAP}", _HINT_TOO_LARGE) from None
    except (OSError, ValueError, EOFError) as error:
        raise _Unusable(f"its header is corrupt or truncated ({error})", _HINT_BROKEN) from None
    if width * height > MAX_IMAGE_PIXELS:
        raise _Unusable(f"it is {width} x {height} pixels, over {_CAP}", _HINT_TOO_LARGE)
    return mode, (width, height)


def describe_missing(paths: Sequence[Path], shown: int = 3) -> str:
    distinct = list(dict.fromkeys(paths))  # rows may name one file many times
    listed = ", ".join(f"{path} (a directory)" if path.is_dir() else str(path) for path in distinct[:shown])
    more = f" and {len(distinct) - shown} more" if len(distinct) > shown else ""
    return f"{listed}{more}"


def check_files_exist(values: Sequence[Any], column: str) -> None:
    """One DataError for all rows of `column` that name no file: NULL or empty paths first, then
    missing files and directories. Values are paths, or None/NaN for NULL."""
    unnamed = sum(not _names_a_path(value) for value in values)
    if unnamed:
        raise DataError(
            f"{unnamed} of {len(values)} rows have no image path in column {column} (NULL or empty).",
            hint=_no_path_hint(column),
        )
    absent = [path for path in map(Path, values) if not path.is_file()]
    if absent:
        raise DataError(
            f"{len(absent)} of {len(values)} image paths in column {column} name no file: {describe_missing(absent)}.",
            hint="Relative paths start at the workspace directory; fix the paths or restore the files.",
        )


def infer_geometry(
    values: Sequence[Any],
    image_size: int | None = None,
    sample: int = 64,
    *,
    column: str | None = None,
    on_error: OnError = "raise",
) -> ImageGeometry:
    """Channels and size for a model from the headers of its first `sample` usable training images:
    grayscale stays one channel; small images of one size keep it; other images are resized to
    `image_size` squares. Unusable inputs raise a DataError, or under on_error='skip' are passed over."""
    _check_on_error(on_error)
    modes, sizes = set(), set()
    usable, first_problem = 0, None
    for index, value in enumerate(values):
        if usable == sample:
            break
        path = None
        try:
            path = _as_path(value, column)
            mode, size = _check_header(_read(path))
        except _Unusable as problem:
            skipped = SkippedImage(index, path, problem.reason)
            if on_error == "raise":
                raise _data_error(skipped, problem.hint, column) from None
            first_problem = first_problem or (skipped, problem.hint)
            continue
        usable += 1
        modes.add(mode)
        sizes.add(size)
    if len(values) and not sizes:
        skipped, hint = first_problem
        first = _data_error(skipped, hint, column).message
        raise DataError(f"None of the {len(values)} inputs is a usable image; the first: {first}", hint=hint)
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
    """uint8 tensor C x H x W -> C x height x width as `geometry` says."""
    import torchvision.transforms.v2.functional as F
    from torchvision.transforms import InterpolationMode

    size = [geometry.height, geometry.width]
    mode = InterpolationMode.BICUBIC if geometry.resample == "bicubic" else InterpolationMode.BILINEAR
    if geometry.resize:
        resized = resized_shape(tuple(image.shape[-2:]), geometry.resize)
        image, resized = _centre_of_long_image(image, resized, size)
        if resized != tuple(image.shape[-2:]):
            image = F.resize(image, list(resized), interpolation=mode, antialias=True)
        image = F.center_crop(image, size)
    elif list(image.shape[-2:]) != size:
        image = F.resize(image, size, interpolation=mode, antialias=True)
    return image.numpy()


def _centre_of_long_image(image, resized: tuple[int, int], size: list[int]):
    """(image, its size once resized) as they are; for a very long image (resized, it would be
    over 4 times the crop's side: a 10 x 20000 px strip would become tens of megapixels), only
    the centre that the crop keeps, with a margin for the resampling filter, at the same scale."""
    import torchvision.transforms.v2.functional as F

    if max(resized) <= 4 * max(size):
        return image, resized
    height, width = image.shape[-2:]
    scale_h, scale_w = resized[0] / height, resized[1] / width
    keep = (min(height, math.ceil((size[0] + 8) / scale_h)), min(width, math.ceil((size[1] + 8) / scale_w)))
    return F.center_crop(image, list(keep)), (round(keep[0] * scale_h), round(keep[1] * scale_w))


def resized_shape(shape: tuple[int, int], resize: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) an image of `shape` is resized to before its centre is cut (`ImageGeometry.resize`):
    the shorter side to S and the longer in proportion (rounded down, as transformers does), or (H, W)."""
    if len(resize) == 2:
        return resize[0], resize[1]
    (target,), (height, width) = resize, shape
    if height <= width:
        return target, int(target * width / height)
    return int(target * height / width), target


def _as_tensor(data: bytes):
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.uint8)  # a writable copy, as torch asks


def _decode_torchvision(data: bytes, geometry: ImageGeometry) -> np.ndarray:
    import torchvision.transforms.v2.functional as F
    from torchvision.io import decode_image

    image = decode_image(_as_tensor(data), mode=_read_mode(geometry))
    if image.ndim == 4:  # an animated GIF, frames x C x H x W: its first frame, as Pillow reads it
        image = image[0]
    if image.shape[0] != geometry.channels:  # GIFs come back RGB whatever the mode asked
        image = F.rgb_to_grayscale(image[:3]) if geometry.channels == 1 else image[:1].expand(3, -1, -1)
    return _fit(image, geometry)


def _decode_pillow(data: bytes, geometry: ImageGeometry) -> np.ndarray:
    from PIL import Image

    with Image.open(BytesIO(data)) as image:
        image = image.convert("L" if geometry.channels == 1 else "RGB")
        if geometry.resize or geometry.resample != "bilinear":  # as the torchvision path does
            import torch

            array = np.asarray(image, dtype=np.uint8)
            return _fit(torch.from_numpy(np.ascontiguousarray(array[None] if geometry.channels == 1 else array.transpose(2, 0, 1))), geometry)
        if image.size != (geometry.width, geometry.height):
            image = image.resize((geometry.width, geometry.height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if geometry.channels == 1 else array.transpose(2, 0, 1)


def _decode(path: Path, data: bytes, geometry: ImageGeometry) -> np.ndarray:
    """One checked file's bytes as uint8 C x H x W; raises _Unusable when the image is corrupt or truncated."""
    if path.suffix.lower() in _TORCHVISION_SUFFIXES:
        try:
            return _decode_torchvision(data, geometry)
        except (RuntimeError, ValueError):
            pass  # e.g. a mislabelled or corrupt file: Pillow decides, and explains
    try:
        return _decode_pillow(data, geometry)
    except (OSError, ValueError, EOFError) as error:
        raise _Unusable(f"the image is corrupt or truncated ({error})", _HINT_BROKEN) from None


def _decode_jpeg_batch(datas: list[bytes], geometry: ImageGeometry) -> list[np.ndarray] | None:
    """Decoded JPEGs, or None when any of them fails (the caller then decodes one by one)."""
    from torchvision.io import decode_jpeg

    if not datas:
        return []
    try:
        decoded = decode_jpeg([_as_tensor(data) for data in datas], mode=_read_mode(geometry))
    except RuntimeError:
        return None
    return [_fit(image, geometry) for image in decoded]


def _decode_block(
    values: Sequence[Any], positions: range, geometry: ImageGeometry, column: str | None
) -> tuple[dict[int, np.ndarray], list[tuple[SkippedImage, str]]]:
    """The images (uint8 C x H x W) of the usable inputs at `positions`, by position, and the
    unusable ones with the hint for each."""
    images: dict[int, np.ndarray] = {}
    failures: list[tuple[SkippedImage, str]] = []
    jpegs: dict[int, tuple[Path, bytes]] = {}
    for index in positions:
        path = None
        try:
            path = _as_path(values[index], column)
            data = _read(path)
            _check_header(data)
            if path.suffix.lower() in _JPEG_SUFFIXES:
                jpegs[index] = (path, data)
            else:
                images[index] = _decode(path, data, geometry)
        except _Unusable as problem:
            failures.append((SkippedImage(index, path, problem.reason), problem.hint))
    batch = _decode_jpeg_batch([data for _, data in jpegs.values()], geometry)
    if batch is not None:
        images.update(zip(jpegs, batch))
    else:  # a corrupt JPEG among them: one by one finds it, and Pillow says what is wrong
        for index, (path, data) in jpegs.items():
            try:
                images[index] = _decode(path, data, geometry)
            except _Unusable as problem:
                failures.append((SkippedImage(index, path, problem.reason), problem.hint))
    return images, sorted(failures, key=lambda failure: failure[0].index)


def decode_images(
    values: Sequence[Any], geometry: ImageGeometry, *, column: str | None = None, on_error: OnError = "raise"
) -> DecodedImages:
    """The images of the files named by `values` (paths; None or NaN for NULL rows of `column`).

    on_error='raise': the first unusable input raises a DataError naming it and what is wrong;
    otherwise `images` is N x C x H x W, one per input. on_error='skip': unusable inputs are left
    out, so `images` is K x C x H x W for the K inputs listed in `kept`, and the others are in `skipped`.
    """
    _check_on_error(on_error)
    values = list(values)  # positions, also for a pandas Series with its own index
    out = np.empty((len(values), geometry.channels, geometry.height, geometry.width), dtype=np.uint8)
    kept: list[int] = []
    skipped: list[SkippedImage] = []
    for start in range(0, len(values), _BLOCK):
        images, failures = _decode_block(values, range(start, min(start + _BLOCK, len(values))), geometry, column)
        if failures and on_error == "raise":
            raise _data_error(*failures[0], column)
        skipped.extend(failure for failure, _ in failures)
        for index in sorted(images):
            out[len(kept)] = images[index]
            kept.append(index)
    return DecodedImages(out[: len(kept)], kept, skipped)


def load_images(values: Sequence[Any], geometry: ImageGeometry, *, column: str | None = None) -> np.ndarray:
    """uint8 array N x C x H x W, one image per input; a DataError names the first unusable input."""
    return decode_images(values, geometry, column=column).images

