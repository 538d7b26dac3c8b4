"""Where published models come from (GET THANOSQL MODEL, BUILD MODEL ... OPTIONS (pretrained=True)):
the Hugging Face Hub, torchvision's ImageNet weights, or a local mirror.

A model is named by its Hub id (`google/vit-base-patch16-224`), or `torchvision/<network>`
(`torchvision/resnet18`) for the default ImageNet weights torchvision publishes for one of its
classification networks. With a mirror directory (THANOSQL_MODEL_MIRROR), `<mirror>/<name>/`
holds the model's files (as `save_pretrained` writes them, or one torchvision `.pth` state
dict) plus `SHA256SUMS` (`sha256sum` format, one line per file): every file listed is checked,
and nothing else is taken. Without one, `huggingface_hub` downloads the files of the model's
revision (checking each against the Hub's own sha256), and torch.hub downloads torchvision's
weights (checking the sha256 prefix in their file name), into the workspace's cache.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from thanosql.errors import DataError

log = logging.getLogger(__name__)
MANIFEST = "SHA256SUMS"
TORCHVISION = "torchvision/"  # names of torchvision's published weights start so: torchvision/resnet18
# What an image classifier needs from a Hub repository: its config, weights and image processor.
_HUB_FILES = ["config.json", "preprocessor_config.json", "*.safetensors", "pytorch_model.bin"]


def sha256sum(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class ModelSourceResource(dg.ConfigurableResource):
    """`mirror`: a directory of models by Hub id (THANOSQL_MODEL_MIRROR); when unset, models are
    downloaded from the Hugging Face Hub into `cache_dir`."""

    cache_dir: str
    mirror: str | None = None

    def mirrored(self, name: str) -> Path | None:
        """The mirror's directory of model `name`, or None without a mirror. A DataError when the
        mirror has no such model."""
        if not self.mirror:
            return None
        directory = Path(self.mirror).expanduser() / name
        if not (directory / MANIFEST).is_file():
            available = self.mirrored_names()
            raise DataError(
                f"Model {name!r} is not in the model mirror {self.mirror} (no {name}/{MANIFEST} there).",
                hint=(f"Mirrored models: {', '.join(available[:20])}. " if available else "The mirror holds no models yet. ")
                + f"Copy the model's save_pretrained directory to {self.mirror}/{name}/ with `sha256sum * > {MANIFEST}` in it, or unset THANOSQL_MODEL_MIRROR to download.",
            )
        return directory

    def mirrored_names(self) -> list[str]:
        """The names of the models in the mirror (directories holding a SHA256SUMS), sorted; none without a mirror."""
        if not self.mirror:
            return []
        root = Path(self.mirror).expanduser()
        return sorted(str(path.parent.relative_to(root)) for path in root.glob(f"**/{MANIFEST}"))

    def available_offline(self, name: str) -> bool:
        """Whether model `name` can be had without a download: in the mirror, or in the cache (BUILD's pretrained weights)."""
        in_mirror = bool(self.mirror) and (Path(self.mirror).expanduser() / name / MANIFEST).is_file()
        return in_mirror or (Path(self.cache_dir) / name).is_dir()

    def fetch(self, name: str, target: Path, progress: Callable[[str], None] = log.info) -> str:
        """Model `name`'s files, verified, copied into the new directory `target`; returns where they came from.

        From the mirror when it has the model; else torchvision's weights from the cache when an
        earlier fetch left them there (verified then); else from the mirror's error or a download."""
        cached = Path(self.cache_dir) / name
        in_mirror = bool(self.mirror) and (Path(self.mirror).expanduser() / name / MANIFEST).is_file()
        if not in_mirror and name.startswith(TORCHVISION) and cached.is_dir():
            shutil.copytree(cached, target)
            progress(f"using {name} from the cache {cached}")
            return f"cache {cached}"
        mirrored = self.mirrored(name)
        if mirrored is not None:
            files = _verified_manifest(mirrored)
            target.mkdir(parents=True)
            for relative in files:
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(mirrored / relative, target / relative)
            progress(f"using {name} from mirror {self.mirror} ({len(files)} files, sha256 verified)")
            return f"mirror {self.mirror}"
        if name.startswith(TORCHVISION):
            return _download_torchvision(name.removeprefix(TORCHVISION), target, progress)
        return self._download(name, target, progress)

    def cached(self, name: str, progress: Callable[[str], None] = log.info) -> Path:
        """Model `name`'s directory in the cache, fetched (verified) the first time it is asked for."""
        directory = Path(self.cache_dir) / name
        if not directory.is_dir():
            directory.parent.mkdir(parents=True, exist_ok=True)
            staging = directory.parent / f".{directory.name}.{uuid.uuid4().hex[:8]}"
            try:
                self.fetch(name, staging, progress)
                try:
                    staging.rename(directory)
                except OSError:  # another run fetched it meanwhile: theirs is as good
                    if not directory.is_dir():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            progress(f"using {name} from the cache {directory}")
        return directory

    def _download(self, name: str, target: Path, progress: Callable[[str], None]) -> str:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

        progress(f"downloading {name} from the Hugging Face Hub")
        try:
            snapshot = Path(snapshot_download(name, cache_dir=self.cache_dir, allow_patterns=_HUB_FILES))
        except (RepositoryNotFoundError, RevisionNotFoundError):
            raise DataError(f"The Hugging Face Hub has no model {name!r}.", hint="Check the model id, e.g. 'google/vit-base-patch16-224'.") from None
        except (HfHubHTTPError, OSError, ValueError) as error:
            raise DataError(
                f"Could not download {name!r} from the Hugging Face Hub: {str(error).splitlines()[0][:300]}",
                hint="Without internet access, point THANOSQL_MODEL_MIRROR at a directory holding the model.",
            ) from None
        shutil.copytree(snapshot, target)
        return f"Hugging Face Hub, revision {snapshot.name}"


def _download_torchvision(network: str, target: Path, progress: Callable[[str], None]) -> str:
    """Torchvision's default ImageNet weights of `network` downloaded into `target`, their sha256
    checked against the prefix torchvision puts in the file name (resnet18-f37072fd.pth)."""
    import torch
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(network).DEFAULT
    except (KeyError, ValueError):
        raise DataError(
            f"torchvision publishes no classification weights named {network!r}.",
            hint="Name one of torchvision.models.list_models(module=torchvision.models), e.g. torchvision/resnet18.",
        ) from None
    filename = weights.url.rsplit("/", 1)[-1]
    hash_prefix = re.search(r"-([0-9a-f]{6,})\.", filename)
    target.mkdir(parents=True)
    progress(f"downloading torchvision's {weights} from {weights.url}")
    try:
        torch.hub.download_url_to_file(weights.url, str(target / filename), hash_prefix=hash_prefix.group(1) if hash_prefix else None, progress=False)
    except (OSError, RuntimeError, http.client.HTTPException) as error:  # no connection (URLError is an OSError), a cut download, a hash mismatch
        raise DataError(
            f"Could not download torchvision's {weights}: {str(error).splitlines()[0][:300]}",
            hint=f"Without internet access, point THANOSQL_MODEL_MIRROR at a directory holding torchvision/{network}/{filename} and its {MANIFEST}.",
        ) from None
    return f"torchvision {weights} ({weights.url}, sha256 checked)"


def _verified_manifest(directory: Path) -> list[str]:
    """The files SHA256SUMS lists in `directory`, each checked against its sum."""
    files = []
    for number, line in enumerate((directory / MANIFEST).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        expected, _, relative = line.strip().partition(" ")
        relative = relative.strip().lstrip("*")
        path = (directory / relative).resolve()
        if not relative or not path.is_relative_to(directory.resolve()):
            raise DataError(f"{directory / MANIFEST} line {number} is not '<sha256>  <file>': {line[:200]!r}.", hint="Write it with `sha256sum * > SHA256SUMS`.")
        if not path.is_file():
            raise DataError(f"{directory / MANIFEST} lists {relative}, which is not in {directory}.", hint="Copy the file there, or write SHA256SUMS again.")
        if sha256sum(path) != expected.lower():
            raise DataError(
                f"{path} does not match its sha256 in {MANIFEST}: the mirrored file is damaged or was changed.",
                hint="Copy the model to the mirror again (and write SHA256SUMS from the original files).",
            )
        files.append(relative)
    if not files:
        raise DataError(f"{directory / MANIFEST} lists no files.", hint="Write it with `sha256sum * > SHA256SUMS`.")
    return files
