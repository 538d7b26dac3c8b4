"""The ML library: images, embedders, trainers and SimCLR, with no Dagster and no SQL.

Usable and tested on its own, like lightly's modules: one concept per module, progress through
plain callbacks, errors from `thanosql.errors`. The module paths of `embedder.ImageEmbedder`,
`images.ImageGeometry` and `simclr.backbones` are part of the stored format of models (MLflow
keeps them pickled): moving them would break the models users already have.
"""
