"""Projection heads: the NT-Xent loss sees the head's output, search uses the embedding before it.

The SimCLR paper's two-layer MLP head makes the embeddings better for *linear classification*
by letting them keep what the augmentations vary. Image search compares embeddings directly,
so there the invariance should be in the embedding itself: with no head (the loss on the
embeddings), P@4 of nearest neighbours on MNIST rose from about 0.94 to 0.95-0.96 in the same
training time (bench/simclr_quality.py). The default is therefore `none`; `mlp` is the paper's.
"""

from torch import nn

from thanosql_assets.models.simclr.config import HEADS


class ProjectionHead(nn.Sequential):
    """The paper's head: Linear - BatchNorm - ReLU - Linear."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__(
            nn.Linear(input_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, output_dim),
        )


def build_head(kind: str, input_dim: int, output_dim: int) -> nn.Module:
    if kind == "mlp":
        return ProjectionHead(input_dim, input_dim, output_dim)
    if kind == "linear":
        return nn.Linear(input_dim, output_dim)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown projection head {kind!r}; choose one of {', '.join(HEADS)}")
