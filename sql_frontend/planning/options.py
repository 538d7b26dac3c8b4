"""OPTIONS (...) of each statement: names, types, defaults, ranges, and their validation.

Option names are case-insensitive. An unknown name, a repeated name or a bad value is an
error that points at the option and lists what is valid. BUILD MODEL's training options are
read from the algorithm's config dataclass (`thanosql_assets.models.config`), where they are
declared once.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sql_frontend.language.dialect import Options, option_value
from sql_frontend.language.positions import locate
from thanosql.errors import OptionError
from thanosql_assets.models.algorithms import Algorithm

BOOL_OR_NAME = bool | str  # an option that is a switch or names something: pretrained=True, pretrained='my_model'
_TYPE_NAMES = {bool: "True or False", int: "an integer", float: "a number", str: "a string", list: "a [list]", BOOL_OR_NAME: "True, False or a name"}


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: type
    default: Any
    doc: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    unset: str = "none"  # what a default of None means, as the hint says it

    def describe(self) -> str:
        default = self.unset if self.default is None else repr(self.default)
        return f"{self.name} ({_TYPE_NAMES[self.type]}, default {default}): {self.doc}"


OVERWRITE = OptionSpec("overwrite", bool, False, "replace the object if it already exists")
ON_ERROR = OptionSpec(
    "on_error", str, "raise",
    "an unreadable image: 'raise' names it and changes nothing; 'skip' goes on without it and lists it",
    choices=("raise", "skip"),
)
SCHEDULE = OptionSpec(
    "schedule", str, None, "cron string (e.g. '0 3 * * *'): retrain on this schedule, then re-embed what the model embedded"
)

GET_DATASET_OPTIONS = (OVERWRITE,)
GET_MODEL_OPTIONS = (OptionSpec("overwrite", bool, False, "fetch the model again as a new version of an existing model"),)
COPY_OPTIONS = (
    OVERWRITE,
    OptionSpec("append", bool, False, "add the file's rows to the existing table (embeddings of the table are brought up to date)"),
    OptionSpec("sheet", str, None, "the sheet of an .xlsx or .xls file to copy (needed when it has several)"),
)
PARTITIONS = OptionSpec(
    "partitions", int, None,
    "embed the images in this many Dagster partition runs, which the run launcher can place on as many machines; "
    "the table switches to the new embedding once, after the last",
    minimum=1, maximum=1024, unset="one per million images",
)
CREATE_TABLE_USING_OPTIONS = (
    OptionSpec("path_type", str, "folder", "where the images are: a folder (searched recursively)", choices=("folder",)),
    OptionSpec("data_type", str, "image", "what the files hold", choices=("image",)),
    OptionSpec("file_type", list, [".jpg", ".jpeg", ".png"], "file suffixes to take, e.g. ['.jpg']"),
    OptionSpec("image_col", str, "image_path", "name of the column of image paths in the new table"),
    ON_ERROR,
    OVERWRITE,
    PARTITIONS,
)
SEARCH_OPTIONS = (
    OptionSpec("table_name", str, None, "save the rows as a new table (plain data, a Dagster asset downstream of the table searched)"),
    OptionSpec("overwrite", bool, False, "replace a table an earlier SEARCH saved"),
)
CONVERT_OPTIONS = (
    OptionSpec("table_name", str, None, "table that receives the embedding column (default: the table queried)"),
    OptionSpec("image_col", str, "image_path", "column holding the image file paths"),
    OptionSpec("batch_size", int, 256, "images embedded per forward pass", minimum=1, maximum=65_536),
    ON_ERROR,
    PARTITIONS,
)
IMAGE_COL = OptionSpec("image_col", str, "image_path", "column holding the image file paths")
# BUILD MODEL options of SimCLR: which rows, which columns, how quality is measured, when to retrain.
SIMCLR_MODEL_OPTIONS = (
    IMAGE_COL,
    OptionSpec(
        "label_col", str, "label",
        "column of labels used only to measure retrieval quality on held-out rows (never for training); ignored when absent",
    ),
    OptionSpec(
        "holdout", float, 0.1, "share of labelled rows held out of training to measure P@4/P@10 (0 = train on all rows)",
        minimum=0, maximum=0.5,
    ),
    SCHEDULE,
    ON_ERROR,
    OVERWRITE,
)
LABEL_COL = OptionSpec("label_col", str, "label", "column of the labels (integers, text or booleans; no NULLs)")
# BUILD MODEL options of classifiers.
CLASSIFIER_MODEL_OPTIONS = (
    IMAGE_COL,
    LABEL_COL,
    OptionSpec(
        "holdout", float, 0.1, "share of the rows held out of training to measure accuracy (0 = train on all rows)",
        minimum=0, maximum=0.5,
    ),
    OptionSpec(
        "base_model", str, None,
        "a SimCLR model of the workspace whose encoder is fine-tuned with the labels (few labels go a long way)",
    ),
    OptionSpec(
        "self_training", bool, True,
        "with base_model: also learn from the SimCLR model's other training images, each labelled by the classifier "
        "itself where it is confident (pseudo-labels); False trains on the query's labelled rows only",
    ),
    OptionSpec(
        "pretrained", BOOL_OR_NAME, False,
        "start from pretrained weights: True for torchvision's ImageNet weights of the algorithm's network, "
        "or the name of a classifier of the workspace of the same architecture (e.g. an uploaded one)",
    ),
    OptionSpec(
        "schedule", str, None,
        "cron string (e.g. '0 3 * * *'): retrain on this schedule; the new version serves if held-out accuracy does not drop",
    ),
    ON_ERROR,
    OVERWRITE,
)
# Options that fix what a model is and where it starts: FIT MODEL keeps them from the model it trains further.
MODEL_SHAPE_OPTIONS = frozenset(
    {"base_model", "self_training", "pretrained", "input_size", "image_size", "backbone", "embedding_dim", "projection_head", "projection_dim"}
)
UPLOAD_MODEL_OPTIONS = (
    OptionSpec(
        "framework", str, None, "what the source is: 'huggingface' (a save_pretrained directory) or 'pytorch' (torchvision weights)",
        choices=("huggingface", "pytorch"), unset="none: required",
    ),
    OptionSpec("algorithm", str, None, "framework 'pytorch': the architecture of the weights, one of BUILD MODEL's classifiers (e.g. 'ResNet18')"),
    OptionSpec("overwrite", bool, False, "register the source again as a new version of an existing model"),
)
PREDICT_OPTIONS = (
    IMAGE_COL,
    OptionSpec("batch_size", int, 256, "images classified per forward pass", minimum=1, maximum=65_536),
    OptionSpec("top_k", int, None, "also add the k most likely labels and their probabilities (predicted_1, confidence_1, ...)", minimum=1),
    OptionSpec("table_name", str, None, "save the result as this new table (a Dagster asset) instead of only returning it"),
    OptionSpec("overwrite", bool, False, "replace the table_name table if PREDICT made it before"),
    OptionSpec("labels", list, None, "zero-shot (CLIP) models: the candidate labels, e.g. ['cat', 'dog']"),
)
EVALUATE_OPTIONS = (
    IMAGE_COL,
    LABEL_COL,
    OptionSpec("batch_size", int, 256, "images classified per forward pass", minimum=1, maximum=65_536),
)


def config_options(config: type) -> tuple[OptionSpec, ...]:
    """The options of a config dataclass: one per field, typed by its annotation, described by its metadata."""
    hints = typing.get_type_hints(config)
    specs = []
    for item in dataclasses.fields(config):
        kind, choices = _option_type(hints[item.name])
        specs.append(
            OptionSpec(
                item.name, kind, item.default, item.metadata["doc"], choices=choices,
                minimum=item.metadata.get("minimum"), maximum=item.metadata.get("maximum"), unset="depends on the data",
            )
        )
    return tuple(specs)


def build_model_options(algorithm: Algorithm) -> tuple[OptionSpec, ...]:
    """Every option of BUILD MODEL ... USING `algorithm`."""
    common = CLASSIFIER_MODEL_OPTIONS if algorithm.kind == "classifier" else SIMCLR_MODEL_OPTIONS
    return (*common, *config_options(algorithm.config))


def fit_model_options(algorithm: Algorithm) -> tuple[OptionSpec, ...]:
    """Every option of FIT MODEL ... USING a model of `algorithm`: BUILD's, less those that fix the model's shape."""
    return tuple(spec for spec in build_model_options(algorithm) if spec.name not in MODEL_SHAPE_OPTIONS)


def _option_type(annotation: Any) -> tuple[type, tuple[str, ...] | None]:
    """(bool | int | float | str, choices) of a field annotation such as `int | None` or `Literal['a', 'b']`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return str, typing.get_args(annotation)
    return annotation, None


def validate_options(
    node: Options | None,
    specs: Sequence[OptionSpec],
    *,
    statement: str,
    sql: str,
    aliases: dict[str, str] | None = None,
    fixed: tuple[frozenset[str], str] | None = None,
) -> dict[str, Any]:
    """Option values by name, defaults filled in; raises OptionError pointing at the first bad one.
    `aliases` maps older option names (ThanoSQL's `epochs`) to the current ones. `fixed`: options
    this statement cannot take because the object it starts from fixed them, and that object's name."""
    by_name = {spec.name: spec for spec in specs}
    values: dict[str, Any] = {}
    for entry in node.entries() if node else []:
        key_node = entry.this
        name = key_node.this.lower()
        name = (aliases or {}).get(name, name) if (aliases or {}).get(name) in by_name else name
        spec = by_name.get(name)
        if spec is None and fixed and name in fixed[0]:
            raise OptionError(
                f"Option {name!r} cannot change in {statement}: model {fixed[1]!r} fixed it when it was built.",
                **locate(sql, key_node),
                hint=f"Leave it out (FIT MODEL keeps what {fixed[1]} was built with), or BUILD MODEL a new model to choose {name}.",
            )
        if spec is None:
            close = difflib.get_close_matches(name, by_name, n=1)
            raise OptionError(
                f"Unknown option {name!r} for {statement}.",
                **locate(sql, key_node),
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"Valid options: {', '.join(sorted(by_name))}.",
            )
        if name in values:
            written = key_node.this.lower()
            twice = f"Option {name!r} is given twice" + (f" ({written} is another name for it)" if written != name else "")
            raise OptionError(f"{twice}.", **locate(sql, key_node), hint="Keep one of them.")
        value_node = entry.args["value"]
        values[name] = _check(spec, option_value(value_node), statement, **locate(sql, value_node))
    for spec in specs:
        values.setdefault(spec.name, spec.default)
    return values


def _check(spec: OptionSpec, value: Any, statement: str, **where: Any) -> Any:
    def fail(problem: str) -> OptionError:
        return OptionError(f"Option {spec.name!r} of {statement} {problem}.", **where, hint=spec.describe())

    if spec.type is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise fail(f"must be True or False, not {value!r}")
    elif spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"must be an integer, not {value!r}")
    elif spec.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(f"must be a number, not {value!r}")
        value = float(value)
    elif spec.type is str:
        if not isinstance(value, str) or not value:
            raise fail(f"must be a non-empty string, not {value!r}")
    elif spec.type is list:
        if not isinstance(value, list):
            raise fail(f"must be a [list], e.g. ['.jpg'], not {value!r}")
    elif spec.type == BOOL_OR_NAME:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, (bool, str)) or value == "":
            raise fail(f"must be True, False or a name, not {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise fail(f"must be one of {', '.join(spec.choices)}, not {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise fail(f"must be at least {spec.minimum:g}, not {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise fail(f"must be at most {spec.maximum:g}, not {value!r}")
    return value
