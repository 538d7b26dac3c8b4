"""Training configs: one frozen dataclass per algorithm, whose fields are its BUILD MODEL OPTIONS.

A field's type says what values it takes (`Literal[...]` lists the choices; `| None` means the
data or the device decide), and `option()` gives it its default, a one-line description and its
range. The SQL frontend builds each statement's option grammar from these fields, so an option
is declared once, where the code that uses it lives.
"""

from dataclasses import field
from typing import Any


def option(default: Any, doc: str, *, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A config field: its default, what it means, and its valid range."""
    return field(default=default, metadata={"doc": doc, "minimum": minimum, "maximum": maximum})


def devices_option() -> Any:
    """`devices`, which every trainer takes (training.lightning_trainer)."""
    return option(
        1, "GPUs (or, on CPUs, processes) that train together with Lightning's DDP, each on its own batches of every epoch; "
        "batch_size is per device", minimum=1, maximum=64,
    )


def num_nodes_option() -> Any:
    """`num_nodes`, which every trainer takes (training.lightning_trainer)."""
    return option(
        1, "machines that train together with DDP, each running the same run with MASTER_ADDR, MASTER_PORT and NODE_RANK "
        "set by the cluster's launcher", minimum=1, maximum=1024,
    )
