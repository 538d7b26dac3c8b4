"""Showing results to people: readable tables in a terminal, and pictures for PRINT IMAGE."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from resources.warehouse import array_columns, vector_columns
from sql_frontend.execution.results import PRINT_ATTR


def _short_vector(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "NULL"
    items = ", ".join(f"{float(x):.4g}" for x in list(value)[:4])
    return f"[{items}, ...]" if len(value) > 4 else f"[{items}]"


def _short_list(value) -> str:
    """An array of text, integers, ... as the list it is: ['a', 'b']; NULL elements as None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "NULL"
    return str(value.tolist() if hasattr(value, "tolist") else list(value))  # a masked array's tolist() keeps its NULLs


def format_table(rows: pd.DataFrame, max_rows: int = 60, min_rows: int = 10) -> str:
    """Like Jupyter shows a DataFrame (pandas' display.max_rows and min_rows): every row up to
    `max_rows`, else the first and last of `min_rows`; vectors shortened, the shape below."""
    shown = rows.copy()
    vectors = vector_columns(shown)
    for name in array_columns(shown):
        shown[name] = shown[name].map(_short_vector if name in vectors else _short_list)
    if len(shown) > max_rows:
        half = min_rows // 2
        ellipsis = pd.DataFrame([["..."] * len(shown.columns)], columns=shown.columns, index=["..."])
        shown = pd.concat([shown.head(half).astype(object), ellipsis, shown.tail(half).astype(object)])
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
        text = shown.to_string() if len(shown) else "  ".join(map(str, shown.columns))  # not pandas' "Empty DataFrame"
    return f"{text}\n\n[{len(rows)} rows x {len(rows.columns)} columns]"


def _shown(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def prediction_captions(rows: pd.DataFrame) -> list[str] | None:
    """"predicted 8 (0.97)" for each row of a result with PREDICT's columns; None without them."""
    if "predicted" not in rows.columns:
        return None
    confidence = rows["confidence"] if "confidence" in rows.columns else pd.Series([None] * len(rows), index=rows.index)
    return [
        f"predicted {label}" + ("" if pd.isna(score) else f" ({score:.2f})")
        for label, score in zip(rows["predicted"], confidence)
    ]


def printed_images(rows: pd.DataFrame) -> list[tuple[str, str]] | None:
    """(absolute path, caption) for each row of a PRINT IMAGE result; None for other results.
    The caption is the prediction when the rows have one (PREDICT's columns), else the other columns."""
    info = rows.attrs.get(PRINT_ATTR)
    if not info:
        return None
    captions = prediction_captions(rows)
    if captions is None:
        vectors = set(vector_columns(rows))
        others = [c for c in rows.columns if c != info["column"] and c not in vectors]
        captions = [", ".join(_shown(value) for value in row) for row in rows[others].itertuples(index=False)]
    return list(zip(info["paths"], captions))


def _fitted(path: str, side: int):
    """The image at `path` as RGB, upright (its EXIF orientation applied), fitted within side x
    side px: small images (digits) enlarged by a whole factor, pixel for pixel; large ones
    reduced (JPEGs decode at reduced size, so a huge photo costs little). Raises OSError,
    ValueError or DecompressionBombError."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.draft("RGB", (side, side))
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            image = _eight_bit(image)
        if image.mode in ("RGBA", "LA", "P", "PA"):  # transparency shows on white, as a browser shows it
            rgba = image.convert("RGBA")
            image = Image.new("RGBA", rgba.size, "white")
            image.alpha_composite(rgba)
        image = image.convert("RGB")
    factor = side // max(image.size)
    if factor >= 1:
        return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    scale = side / max(image.size)  # a very long strip keeps at least one pixel across
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _eight_bit(image):
    """A 16-bit, 32-bit or float grayscale image as 8-bit (Pillow's convert would clip it to white)."""
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float32)
    top = float(pixels.max()) if pixels.size else 0.0
    if image.mode.startswith("I;16") or top > 255:
        pixels = pixels * (255 / 65535)
    elif image.mode == "F" and top <= 1:
        pixels = pixels * 255
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _unshowable(error: Exception) -> str:
    from PIL import Image

    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "a folder"
    if isinstance(error, Image.DecompressionBombError):
        return "too large to show"
    return "not an image"


def jpeg_thumbnail(path: str, side: int = 224) -> tuple[bytes | None, str | None]:
    """(JPEG bytes of the image at `path` fitted within side x side px, None), or (None, why it
    cannot be shown). A notebook embeds the thumbnail, not the file: a 12-megapixel photo would
    grow the .ipynb by its whole size, and browsers show neither BMP nor TIFF."""
    import io

    from PIL import Image

    try:
        image = _fitted(path, side)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return None, _unshowable(error)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue(), None


NO_IMAGES = "(no images: the query returned no rows)"


def contact_sheet(images: Sequence[tuple[str, str]], out_dir: Path, tile: int = 140) -> tuple[Path, list[tuple[str, str]]]:
    """One PNG with the images side by side, each captioned with its file name; its path, and
    (path, why) of each image it could not show."""
    from PIL import Image, ImageDraw

    caption_height = 30
    unshown = []
    sheet = Image.new("RGB", (tile * len(images), tile + caption_height), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (path, caption) in enumerate(images):
        x = index * tile
        try:
            thumb = _fitted(path, tile - 10)
            sheet.paste(thumb, (x + (tile - thumb.width) // 2, (tile - thumb.height) // 2))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            # A missing or unreadable file is one tile saying so: the other images still show.
            unshown.append((path, _unshowable(error)))
            draw.rectangle((x + 5, 5, x + tile - 5, tile - 5), outline="gray")
            draw.text((x + 12, tile // 2 - 6), "cannot show", fill="gray")
        draw.text((x + 4, tile), Path(path).name, fill="black")
        draw.text((x + 4, tile + 14), caption[:22], fill="gray")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"print-image-{dt.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.png"
    sheet.save(out)
    return out, unshown
