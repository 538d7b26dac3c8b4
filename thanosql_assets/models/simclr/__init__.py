"""SimCLR (Chen et al., 2020): contrastive self-supervised image embeddings.

One concept per module: `loss` (NT-Xent), `transforms` (batched augmentations on tensors),
`heads` (projection head), `backbones` (encoder registry), `module` (the Lightning module).
"""
