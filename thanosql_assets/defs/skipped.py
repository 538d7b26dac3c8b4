"""Images left out under OPTIONS (on_error='skip'), said aloud: in progress lines and asset metadata."""

from __future__ import annotations


def skipped_summary(skipped: list[tuple[str, str]], shown: int = 3) -> str:
    listed = "; ".join(f"{image} ({why})" for image, why in skipped[:shown])
    return listed + (f"; and {len(skipped) - shown} more (see the asset's metadata)" if len(skipped) > shown else "")


def skipped_markdown(skipped: list[tuple[str, str]]) -> str:
    return "| image | why |\n| --- | --- |\n" + "\n".join(f"| {image} | {why} |" for image, why in skipped)
