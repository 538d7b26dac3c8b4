"""What the embedded and the remote connection share: the same methods, and closing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from sql_frontend.language.parser import ParsedStatement


Result = pd.DataFrame | None


class ConnectionBase(ABC):
    """A ThanoSQL session: `execute` one statement, `execute_script` several; usable in a `with` block."""

    @abstractmethod
    def execute(self, sql: str) -> Result:
        """Run one statement; a DataFrame for statements that return rows, None for the others."""

    @abstractmethod
    def execute_script(self, sql: str) -> list[Result]:
        """Run statements separated by `;` in order, stopping at the first error."""

    @abstractmethod
    def execute_statement(self, statement: ParsedStatement) -> Result:
        """Run one statement of a script already split by `parse_script` (the CLI and the magic show each first)."""

    def close(self) -> None:
        """Release what the connection holds."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
