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
    """An array of text, integers, ... as the list it is: ['a', 'b']."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "NULL"
    return str(np.asarray(value).tolist())


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


def printed_images(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(absolute path, caption) for each row of a PRINT IMAGE result; [] for other results.
    The caption is the prediction when the rows have one (PREDICT's columns), else the other columns."""
    info = rows.attrs.get(PRINT_ATTR)
    if not info:
        return []
    captions = prediction_captions(rows)
    if captions is None:
        vectors = set(vector_columns(rows))
        others = [c for c in rows.columns if c != info["column"] and c not in vectors]
        captions = [", ".join(_shown(value) for value in row) for row in rows[others].itertuples(index=False)]
    return list(zip(info["paths"], captions))


def contact_sheet(images: Sequence[tuple[str, str]], out_dir: Path, tile: int = 140) -> tuple[Path, list[tuple[str, str]]]:
    """One PNG with the images side by side, each captioned with its file name; its path, and
    (path, why) of each image it could not show."""
    from PIL import Image, ImageDraw, ImageOps

    caption_height = 30
    unshown = []
    sheet = Image.new("RGB", (tile * len(images), tile + caption_height), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (path, caption) in enumerate(images):
        x = index * tile
        try:
            with Image.open(path) as image:
                image.draft("RGB", (tile, tile))  # JPEGs decode at reduced size: a huge one costs little
                thumb = ImageOps.contain(image.convert("RGB"), (tile - 10, tile - 10), Image.Resampling.NEAREST)
            sheet.paste(thumb, (x + (tile - thumb.width) // 2, (tile - thumb.height) // 2))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            # A missing or unreadable file is one tile saying so: the other images still show.
            why = "no such file" if isinstance(error, FileNotFoundError) else "a folder" if isinstance(error, IsADirectoryError) else "not an image"
            unshown.append((path, why if isinstance(error, OSError) else "too large to show" if isinstance(error, Image.DecompressionBombError) else "not an image"))
            draw.rectangle((x + 5, 5, x + tile - 5, tile - 5), outline="gray")
            draw.text((x + 12, tile // 2 - 6), "cannot show", fill="gray")
        draw.text((x + 4, tile), Path(path).name, fill="black")
        draw.text((x + 4, tile + 14), caption[:22], fill="gray")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"print-image-{dt.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.png"
    sheet.save(out)
    return out, unshown
