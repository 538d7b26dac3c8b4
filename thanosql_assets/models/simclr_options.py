"""BUILD MODEL ... USING SimCLR OPTIONS: every option, its type, default and valid range.

Options whose default is None depend on the data or the device: colour jitter and horizontal
flips are on for colour photos and off for grayscale images such as digits (a flipped 2 is not
a 2), stroke thickening/thinning the other way round; the backbone is the small CNN unless a
GPU trains photo-sized images.

The defaults were chosen with bench/simclr_quality.py (1,000 MNIST training images, 2 CPU
cores): they reach P@4 of about 0.95 on held-out digits in under a minute of training.
"""

from __future__ import annotations

from sql_frontend.options import OptionSpec
from thanosql_assets.models.simclr.names import BACKBONE_NAMES
from thanosql_assets.models.simclr.names import HEADS

SIMCLR_OPTIONS = (
    OptionSpec("image_col", str, "image_path", "column holding the image file paths"),
    OptionSpec("max_epochs", int, 30, "passes over the training images", minimum=1, maximum=100_000),
    OptionSpec("batch_size", int, 128, "images per training step (each seen as two views)", minimum=2, maximum=65_536),
    OptionSpec("learning_rate", float, 2e-3, "peak learning rate of Adam (one-cycle schedule)", minimum=1e-7, maximum=10),
    OptionSpec("temperature", float, 0.2, "NT-Xent temperature τ", minimum=0.01, maximum=10),
    OptionSpec("backbone", str, None, "encoder network (default: small_cnn, or resnet18 for images over 32 px on a GPU)", choices=BACKBONE_NAMES),
    OptionSpec("embedding_dim", int, None, "size of the stored embeddings (default: the backbone's)", minimum=8, maximum=8192),
    OptionSpec("projection_head", str, "none", "head between the embeddings and the loss: none (best for search), linear, or mlp (the paper's)", choices=HEADS),
    OptionSpec("projection_dim", int, 128, "output size of a linear or mlp projection head", minimum=8, maximum=8192),
    OptionSpec("image_size", int, None, "side of the square images the model sees (default: the images' own size up to 64 px, else 64)", minimum=8, maximum=1024),
    OptionSpec("seed", int, 0, "random seed; the same seed and data give the same model on the CPU"),
    OptionSpec("rotation", float, 20.0, "largest random rotation, in degrees", minimum=0, maximum=180),
    OptionSpec("shear", float, 0.3, "largest random horizontal shear (slant), as a factor", minimum=0, maximum=1),
    OptionSpec("translate", float, 0.1, "largest random shift, as a fraction of the image side", minimum=0, maximum=0.5),
    OptionSpec("scale", float, 0.15, "largest random zoom in or out, as a fraction", minimum=0, maximum=0.9),
    OptionSpec("elastic", float, 0.03, "strength of the smooth elastic distortion (0 = off)", minimum=0, maximum=0.2),
    OptionSpec("stroke", float, None, "probability of thickening or thinning strokes (default: 0.5 for grayscale images, 0 for colour)", minimum=0, maximum=1),
    OptionSpec("horizontal_flip", bool, None, "randomly mirror images (default: on for colour images, off for grayscale)"),
    OptionSpec("color_jitter", float, None, "strength of brightness/contrast/saturation jitter (default: 0.4 for colour images, 0 for grayscale)", minimum=0, maximum=1),
    OptionSpec("label_col", str, "label", "column of labels used only to measure retrieval quality on held-out rows (never for training); ignored when absent"),
    OptionSpec("holdout", float, 0.1, "share of labelled rows held out of training to measure P@4/P@10 (0 = train on all rows)", minimum=0, maximum=0.5),
    OptionSpec("device", str, "auto", "where to train: auto (GPU when present), cpu or cuda", choices=("auto", "cpu", "cuda")),
)
