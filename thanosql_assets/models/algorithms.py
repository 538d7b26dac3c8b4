"""Model algorithms BUILD MODEL ... USING <algorithm> accepts, with their OPTIONS.

Kept free of torch imports: the SQL frontend validates options without loading training code.
"""

from __future__ import annotations

from dataclasses import dataclass

from sql_frontend.options import OVERWRITE, SCHEDULE, OptionSpec
from thanosql_assets.models.simclr_options import SIMCLR_OPTIONS


@dataclass(frozen=True)
class Algorithm:
    name: str  # as users write it, e.g. SimCLR
    options: tuple[OptionSpec, ...]

    @property
    def column_suffix(self) -> str:
        return self.name.lower()


ALGORITHMS: dict[str, Algorithm] = {
    "simclr": Algorithm("SimCLR", (*SIMCLR_OPTIONS, SCHEDULE, OVERWRITE)),
}
