"""The algorithms BUILD MODEL ... USING <algorithm> accepts, each with its typed config.

Kept free of torch imports: the SQL frontend checks options and the code location builds
assets without loading training code.
"""

from __future__ import annotations

from dataclasses import dataclass

from thanosql_assets.models.simclr.config import SimCLRConfig


@dataclass(frozen=True)
class Algorithm:
    name: str  # as users write it, e.g. SimCLR
    config: type  # the frozen dataclass of its training OPTIONS

    @property
    def column_suffix(self) -> str:
        """The embedding column of a model `m` is `m_<suffix>`, as in the tutorials (`..._simclr`)."""
        return self.name.lower()


ALGORITHMS: dict[str, Algorithm] = {
    "simclr": Algorithm("SimCLR", SimCLRConfig),
}
