"""Hugging Face `transformers` image classifiers, and CLIP as a zero-shot classifier, with the interface PREDICT uses.

A model comes from a local `save_pretrained` directory (config.json, the weights, and the image
processor's preprocessor_config.json): nothing is downloaded. Each class offers exactly what
`classifiers.classifier.ImageClassifier` offers to PREDICT and EVALUATE — `classes`, `geometry`,
`network`, `num_classes`, `predict_proba` and `predict_files_checked` — and pickles whole, as
MLflow stores it.

Images decode with the project's `images.decode_images`, as every other model's: RGB (grey
images get three equal channels), resized and cropped as the processor does it (straight to its
size, as ViT's; or the shorter side first, then the centre, as ConvNeXt's and CLIP's), then
rescaled and normalized on the tensor, with the processor's resampling (bilinear or bicubic).

Every unusable directory (missing, not a model, not an image classifier, corrupt weights, no
tokenizer for CLIP) raises a DataError saying what is wrong and how to fix it, never a
`transformers`, torch or OS exception.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from thanosql.errors import DataError
from thanosql_assets.models.classifiers.classifier import ImageClassifier
from thanosql_assets.models.classifiers.networks import detach_last_linear
from thanosql_assets.models.embedder import native_bf16
from thanosql_assets.models.images import ImageGeometry

DEFAULT_CLIP_TEMPLATE = "a photo of a {label}."
_FALLBACK_SIZE = 224  # when neither the processor nor the model config says the input size
_HINT_SAVE = (
    "Save the model and its image processor with `model.save_pretrained(directory)` and "
    "`AutoImageProcessor.from_pretrained(...).save_pretrained(directory)`, and name that directory."
)
_HINT_WEIGHTS = "Replace the weights file (model.safetensors or pytorch_model.bin) with an intact copy written by save_pretrained."


class _PretrainedClassifier(nn.Module):
    """uint8 images -> class probabilities, for a network that takes normalized float images.

    Subclasses define `logits(pixels)`: float B x 3 x H x W, normalized as the processor does ->
    B x K. The rest is the interface PREDICT uses, as `ImageClassifier` offers it.
    """

    def __init__(self, geometry: ImageGeometry, rescale: float, mean: Sequence[float], std: Sequence[float], classes: list, network: str):
        super().__init__()
        self.geometry = geometry
        self.classes = list(classes)
        self.network = network  # one line saying what the model is, for metadata
        self.rescale = rescale  # the processor's rescale_factor (1/255), or 1 for models that take 0..255
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) B x 3 x H x W -> the float input the model was trained on."""
        return (images.float() * self.rescale - self.mean) / self.std

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) images B x 3 x H x W -> logits B x K."""
        return self.logits(self.normalize(images))

    @torch.inference_mode()
    def predict_proba(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 images N x 3 x H x W -> float32 class probabilities N x K (softmax of the logits)."""
        self.eval()  # dropout off, whatever mode the model was left in
        device = self.mean.device
        out = []
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=native_bf16(device.type)):
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.array(images[start : start + batch_size])).to(device)  # a writable copy
                out.append(torch.softmax(self(batch).float(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), dtype=np.float32)

    # The same function as ImageClassifier's, so decoding, chunking, on_error and the DataErrors
    # are those of every other model: it needs only geometry, predict_proba and num_classes.
    predict_files_checked = ImageClassifier.predict_files_checked


class HuggingFaceImageClassifier(_PretrainedClassifier):
    """A `transformers` AutoModelForImageClassification model and its image processor's preprocessing.

    `classes[i]` is the model's `config.id2label[i]`; `model` maps normalized pixel values
    B x 3 x H x W to `.logits` B x K.
    """

    def __init__(self, model: nn.Module, geometry: ImageGeometry, rescale: float, mean: Sequence[float], std: Sequence[float], classes: list, network: str):
        super().__init__(geometry, rescale, mean, std, classes, network)
        self.model = model

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).logits

    def as_image_classifier(self) -> ImageClassifier:
        """A copy as an `ImageClassifier` (the model up to its classification layer, then that
        layer as the head; the same preprocessing and classes), which BUILD MODEL fine-tunes."""
        model = copy.deepcopy(self.model)
        head = detach_last_linear(model)
        if head.out_features != self.num_classes:
            raise DataError(
                f"{self.network} has no linear classification layer of its {self.num_classes} classes to fine-tune.",
                hint="Fine-tune a model saved from AutoModelForImageClassification with its classification head.",
            )
        # images * rescale - mean, over std, is images / 255 - mean', over std', with both divided by 255 * rescale
        scale = 255 * self.rescale
        mean, std = self.mean.flatten() / scale, self.std.flatten() / scale
        return ImageClassifier(HuggingFaceFeatures(model, head.in_features), head, self.geometry, mean, std, self.classes, self.network)


class HuggingFaceFeatures(nn.Module):
    """A `transformers` image classification model without its classification layer (nn.Identity
    in its place): normalized pixel values B x 3 x H x W -> the features that layer took, B x F."""

    def __init__(self, model: nn.Module, output_dim: int):
        super().__init__()
        self.model = model
        self.output_dim = output_dim

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).logits


class ClipZeroShotClassifier(_PretrainedClassifier):
    """CLIP's image tower against fixed text prompts, one per class: probabilities are the softmax
    of the image-text logits (cosine similarity x CLIP's learned scale), as CLIPModel computes them.

    The prompts are embedded once when the classifier is built (`text_embeddings`, K x D, unit
    length), so the text tower and the tokenizer are neither kept nor pickled.
    """

    def __init__(
        self,
        vision_model: nn.Module,
        visual_projection: nn.Module,
        text_embeddings: torch.Tensor,
        logit_scale: float,
        geometry: ImageGeometry,
        rescale: float,
        mean: Sequence[float],
        std: Sequence[float],
        classes: list,
        network: str,
    ):
        super().__init__(geometry, rescale, mean, std, classes, network)
        self.vision_model = vision_model
        self.visual_projection = visual_projection
        self.logit_scale = logit_scale  # exp of CLIP's learned log-scale
        self.register_buffer("text_embeddings", text_embeddings.float())

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        image = self.visual_projection(self.vision_model(pixel_values=pixels).pooler_output)
        image = image / image.norm(dim=-1, keepdim=True)
        return self.logit_scale * image @ self.text_embeddings.to(image.dtype).T


def is_huggingface_model_dir(path: Path | str) -> bool:
    """Whether `path` is a directory a `transformers` model was saved in (it holds config.json)."""
    return (Path(path) / "config.json").is_file()


def load_huggingface_classifier(directory: Path, source: str | None = None) -> HuggingFaceImageClassifier:
    """The image classifier saved in `directory` by `save_pretrained`, with its processor's preprocessing.

    `source` names where it came from (e.g. the hub id "google/vit-base-patch16-224") in `network`;
    the directory's name otherwise. Raises a DataError for anything that is not a usable image classifier.
    """
    from transformers import AutoModelForImageClassification
    from transformers.image_utils import IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    directory = Path(directory)
    config = _read_config(directory)
    architecture = _architecture(config)
    if config.model_type not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES:
        raise DataError(
            f"The model in {directory} is a {config.model_type} model ({architecture}), not an image classifier.",
            hint="Use a model saved from AutoModelForImageClassification (e.g. ViT, ConvNeXt, Swin, BEiT, "
            "DeiT, ResNet); a CLIP model classifies with candidate labels instead (zero-shot).",
        )
    _check_rgb(config, directory)
    model = _load_weights(AutoModelForImageClassification, directory, architecture)
    classes = [config.id2label[index] for index in range(config.num_labels)]
    fallback = (getattr(config, "image_size", None) or _FALLBACK_SIZE, 1 / 255, IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD)
    geometry, rescale, mean, std, found = _preprocessing(directory, fallback)
    assumed = "" if found else ", no preprocessor config: ImageNet-standard 0.5 mean/std assumed"
    network = f"Hugging Face {architecture} ({source or directory.name}, {_describe_size(geometry)}{assumed})"
    return HuggingFaceImageClassifier(model, geometry, rescale, mean, std, classes, network)


class ClipZeroShotModel(nn.Module):
    """A whole CLIPModel with its tokenizer and preprocessing: what UPLOAD MODEL stores for CLIP,
    whose classes are the candidate labels each PREDICT names (`for_labels`). `classes` is empty."""

    zero_shot = True

    def __init__(self, model: nn.Module, tokenizer: Any, geometry: ImageGeometry, rescale: float, mean: Sequence[float], std: Sequence[float], network: str):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.geometry = geometry
        self.rescale, self.mean_values, self.std_values = rescale, list(mean), list(std)
        self.network = network
        self.classes: list = []

    @property
    def num_classes(self) -> int:
        return 0

    def for_labels(self, labels: list[str], template: str = DEFAULT_CLIP_TEMPLATE) -> ClipZeroShotClassifier:
        """A classifier over `labels`: each becomes the prompt `template.format(label=label)`
        (a DataError unless there are at least two distinct non-empty labels)."""
        labels = _check_labels(labels)
        prompts = [template.format(label=label) for label in labels]
        config = self.model.config
        with torch.inference_mode():
            tokens = self.tokenizer(
                prompts, padding=True, truncation=True, max_length=config.text_config.max_position_embeddings, return_tensors="pt"
            )
            text = self.model.text_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).pooler_output
            text = self.model.text_projection(text)
            text_embeddings = text / text.norm(dim=-1, keepdim=True)
        logit_scale = float(self.model.logit_scale.detach().exp())
        network = f"{self.network}, prompts {template!r}"
        return ClipZeroShotClassifier(
            self.model.vision_model, self.model.visual_projection, text_embeddings.clone(), logit_scale,
            self.geometry, self.rescale, self.mean_values, self.std_values, labels, network,
        )


def is_clip_model_dir(directory: Path | str) -> bool:
    """Whether `directory` holds a CLIP model (its config says model_type 'clip')."""
    import json

    try:
        return json.loads((Path(directory) / "config.json").read_text()).get("model_type") == "clip"
    except (OSError, ValueError, AttributeError):
        return False


def load_clip_model(directory: Path, source: str | None = None) -> ClipZeroShotModel:
    """The CLIPModel saved in `directory` with its tokenizer (and image processor), for zero-shot
    classification. A DataError when the directory is not a CLIP model or has no tokenizer."""
    from transformers import CLIPModel
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    directory = Path(directory)
    config = _read_config(directory)
    if config.model_type != "clip":
        raise DataError(
            f"The model in {directory} is a {config.model_type} model ({_architecture(config)}), not CLIP.",
            hint="Zero-shot classification needs a CLIPModel saved with save_pretrained (e.g. openai/clip-vit-base-patch32) "
            "and its tokenizer; other image classifiers load without candidate labels.",
        )
    model = _load_weights(CLIPModel, directory, "CLIPModel")
    tokenizer = _load_tokenizer(directory)
    fallback = (config.vision_config.image_size, 1 / 255, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
    geometry, rescale, mean, std, found = _preprocessing(directory, fallback)
    assumed = "" if found else ", no preprocessor config: CLIP's mean/std assumed"
    network = f"Hugging Face CLIP zero-shot ({source or directory.name}, {_describe_size(geometry)}{assumed})"
    return ClipZeroShotModel(model, tokenizer, geometry, rescale, mean, std, network)


def load_clip_zero_shot(
    directory: Path, labels: list[str], source: str | None = None, template: str = DEFAULT_CLIP_TEMPLATE
) -> ClipZeroShotClassifier:
    """A zero-shot classifier over `labels` from the CLIPModel saved in `directory` with its tokenizer
    (and image processor): each label becomes the prompt `template.format(label=label)`.

    Raises a DataError when the directory is not a CLIP model, has no tokenizer, or `labels` are
    not at least two distinct non-empty names.
    """
    labels = _check_labels(labels)
    return load_clip_model(directory, source).for_labels(labels, template)


def _read_config(directory: Path):
    """The model's `transformers` config; a DataError when `directory` holds no model config."""
    from transformers import AutoConfig

    if not directory.is_dir():
        what = "a file, not a directory" if directory.exists() else "no such directory"
        raise DataError(f"Cannot load a Hugging Face model from {directory}: {what}.", hint=_HINT_SAVE)
    if not is_huggingface_model_dir(directory):
        raise DataError(f"{directory} is not a Hugging Face model directory: it has no config.json.", hint=_HINT_SAVE)
    try:
        return AutoConfig.from_pretrained(directory, local_files_only=True)
    except Exception as error:  # invalid JSON, an unknown model_type, a model needing its own code...
        raise DataError(
            f"Cannot read the model config {directory / 'config.json'}: {_first_line(error)}",
            hint="Write config.json with save_pretrained from a transformers release that knows the model, "
            "or upgrade transformers; models that need their own Python code (trust_remote_code) are not loaded.",
        ) from None


def _architecture(config) -> str:
    """The model class the config was saved from (e.g. ViTForImageClassification), else its config class."""
    return (config.architectures or [type(config).__name__])[0]


def _check_rgb(config, directory: Path) -> None:
    channels = getattr(config, "num_channels", 3)
    if channels != 3:
        raise DataError(
            f"The model in {directory} takes {channels}-channel images; only models of RGB images load here.",
            hint="Use a model trained on RGB images (num_channels=3 in its config.json).",
        )


def _load_weights(model_class, directory: Path, architecture: str) -> nn.Module:
    """The model with the directory's weights, float32, in eval mode; a DataError when weights are
    missing, corrupt, of other shapes, or lack part of the model (e.g. the classification head)."""
    try:
        with _quiet_transformers():
            model, info = model_class.from_pretrained(directory, local_files_only=True, output_loading_info=True)
    except Exception as error:  # OSError, SafetensorError, RuntimeError, ValueError... depending on what is wrong
        raise DataError(f"Cannot load the weights of the {architecture} model in {directory}: {_first_line(error)}", hint=_HINT_WEIGHTS) from None
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise DataError(
            f"The weights in {directory} ({architecture}) lack part of the model loaded from them ({shown}), "
            "which would predict with random weights there.",
            hint="Save the whole model fine-tuned for the task (e.g. AutoModelForImageClassification for a classifier, "
            "with its classification head) with save_pretrained.",
        )
    return model.float().eval()  # weights saved in half precision compute in float32 (bfloat16 autocast where native)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' progress bar and load report off while the block runs: on stderr they are
    noise under a notebook cell (the DataErrors here say what matters), and the caller's own
    settings come back after."""
    from transformers.utils import logging as transformers_logging

    bars, verbosity = transformers_logging.is_progress_bar_enabled(), transformers_logging.get_verbosity()
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


def _load_tokenizer(directory: Path):
    """The CLIP tokenizer saved in `directory`; a DataError when there is none or it is unreadable."""
    from transformers import AutoTokenizer

    hint = (
        "Save the tokenizer beside the model: `CLIPProcessor.from_pretrained(...).save_pretrained(directory)` "
        "(or the tokenizer's own save_pretrained) writes tokenizer.json or vocab.json and merges.txt."
    )
    # Checked first: transformers 5 builds an empty tokenizer, not an error, from a directory without these.
    has_vocabulary = (directory / "tokenizer.json").is_file() or all(
        (directory / name).is_file() for name in ("vocab.json", "merges.txt")
    )
    if not has_vocabulary:
        raise DataError(f"The CLIP model in {directory} has no tokenizer (tokenizer.json, or vocab.json and merges.txt).", hint=hint)
    try:
        return AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except Exception as error:  # invalid JSON, a vocabulary the tokenizer class cannot read...
        raise DataError(f"Cannot load the tokenizer of the CLIP model in {directory}: {_first_line(error)}", hint=hint) from None


def _preprocessing(directory: Path, fallback: tuple) -> tuple[ImageGeometry, float, Any, Any, bool]:
    """(geometry, rescale factor, mean, std, whether a processor config was found): the input
    size, resizing, rescaling and normalization of the directory's image processor; `fallback`
    (size, rescale, mean, std) without one."""
    from transformers import AutoImageProcessor

    if not any((directory / name).is_file() for name in ("preprocessor_config.json", "processor_config.json")):
        size, rescale, mean, std = fallback
        return ImageGeometry(3, size, size), rescale, mean, std, False
    try:
        processor = AutoImageProcessor.from_pretrained(directory, local_files_only=True)
    except Exception as error:  # invalid JSON, an unknown processor type...
        raise DataError(
            f"Cannot read the image processor config in {directory}: {_first_line(error)}",
            hint="Write it with `AutoImageProcessor.from_pretrained(...).save_pretrained(directory)`, or delete it to use the defaults.",
        ) from None
    rescale = processor.rescale_factor if getattr(processor, "do_rescale", True) else 1.0
    if getattr(processor, "do_normalize", True):
        mean, std = processor.image_mean, processor.image_std
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return _geometry(processor, fallback[0]), float(rescale), mean, std, True


def _geometry(processor, fallback: int) -> ImageGeometry:
    """The RGB images the processor gives the model, and how it resizes and crops to them:
    straight to {height, width}; or the shorter side to `shortest_edge`, then the centre
    `crop_size` (CLIP, or a square of the short side where the processor would keep the aspect);
    ConvNeXt's processor resizes the shorter side to shortest_edge / crop_pct below 384 px, then
    cuts the centre shortest_edge square."""
    from transformers.image_utils import PILImageResampling

    size = getattr(processor, "size", None) or {}  # a dict in transformers 4, a SizeDict in 5: both have .get
    crop = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
    resample = "bicubic" if getattr(processor, "resample", None) == PILImageResampling.BICUBIC else "bilinear"
    if size.get("shortest_edge"):
        edge = int(size.get("shortest_edge"))
        crop_pct = getattr(processor, "crop_pct", None)
        if crop_pct is not None and type(processor).__name__.startswith("ConvNext"):
            return ImageGeometry(3, edge, edge, (int(edge / crop_pct),) if edge < 384 else (), resample)
        height, width = (int(crop.get("height")), int(crop.get("width"))) if crop else (edge, edge)
        return ImageGeometry(3, height, width, (edge,), resample)
    if size.get("height") and size.get("width"):
        height, width = int(size.get("height")), int(size.get("width"))
        if crop:
            return ImageGeometry(3, int(crop.get("height")), int(crop.get("width")), (height, width), resample)
        return ImageGeometry(3, height, width, (), resample)
    return ImageGeometry(3, fallback, fallback)


def _describe_size(geometry: ImageGeometry) -> str:
    size = f"{geometry.height} px" if geometry.height == geometry.width else f"{geometry.height}x{geometry.width} px"
    if len(geometry.resize) == 1:
        return f"{size}, centre cut after the shorter side is resized to {geometry.resize[0]} px"
    if geometry.resize:
        return f"{size}, centre cut after resizing to {geometry.resize[0]}x{geometry.resize[1]} px"
    return size


def _check_labels(labels: list[str]) -> list[str]:
    """The candidate labels as given; a DataError unless they are two or more distinct non-empty strings."""
    labels = list(labels)
    hint = "Give two or more distinct class names, e.g. labels=['cat', 'dog', 'bird']."
    if any(not isinstance(label, str) or not label.strip() for label in labels):
        raise DataError(f"Zero-shot labels must be non-empty strings, not {labels!r}.", hint=hint)
    if len(set(labels)) < 2:
        raise DataError(f"Zero-shot classification needs at least two distinct labels, not {labels!r}.", hint=hint)
    if len(set(labels)) < len(labels):
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        raise DataError(f"Zero-shot labels must be distinct; repeated: {', '.join(repeated)}.", hint=hint)
    return labels


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
