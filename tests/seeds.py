"""The specification's statements, read straight from ../shared/seeds."""

from __future__ import annotations

import re
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def seed_cells(prefix: str) -> list[str]:
    """The %%thanosql cells of the seed document whose name starts with `prefix`, in order."""
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    text = path.read_text(encoding="utf-8")
    return [cell.strip() for cell in re.findall(r"```python[^\n]*\n%%thanosql\n(.*?)```", text, re.S)]
