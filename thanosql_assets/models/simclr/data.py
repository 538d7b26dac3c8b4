"""Batches from images decoded once into memory.

A DataLoader over a TensorDataset would index and re-stack every image of every batch in
Python; here a batch is one indexing operation on the preloaded uint8 tensor.
"""

import torch

from thanosql_assets.models.training import rank_batches


class ShuffledBatches:
    """Iterable of uint8 image batches, reshuffled every epoch by a seeded generator."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int):
        if len(images) < 2:
            raise ValueError("need at least two images")
        self.images = images
        self.batch_size = min(batch_size, len(images))
        self.generator = torch.Generator().manual_seed(seed)
        # A tiny ragged last batch gives a near-degenerate contrastive task and noisy BatchNorm statistics.
        self.drop_last = len(images) % self.batch_size < max(2, self.batch_size // 2)

    def __len__(self) -> int:
        """Batches per epoch of this process (its share under DDP)."""
        return len(rank_batches(self.batches))

    @property
    def batches(self) -> int:
        """Batches per epoch over all processes."""
        full, rest = divmod(len(self.images), self.batch_size)
        return full + (0 if self.drop_last or rest == 0 else 1)

    def __iter__(self):
        # Every DDP process draws the same order (the same seeded generator) and takes its own batches of it.
        order = torch.randperm(len(self.images), generator=self.generator)
        for batch in rank_batches(self.batches):
            batch %= self.batches
            yield self.images[order[batch * self.batch_size : (batch + 1) * self.batch_size]]
