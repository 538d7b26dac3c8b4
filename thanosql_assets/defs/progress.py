"""Progress of long work, shown where the user is looking.

Messages go to the Dagster run's log (the UI) and to the Python logger `thanosql.progress`,
which the CLI, the notebook magic and `thanosql.connect()` print.
"""

from __future__ import annotations

import logging

import dagster as dg

logger = logging.getLogger("thanosql.progress")


def counted(count: int, noun: str) -> str:
    """`count` and `noun`, plural unless one: "1 image", "3 images"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


class Progress:
    def __init__(self, context: dg.OpExecutionContext | None = None):
        self._context = context

    def __call__(self, message: str) -> None:
        if self._context is not None:
            self._context.log.info(message)
        logger.info(message)
