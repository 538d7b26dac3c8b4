"""Where published models come from (GET THANOSQL MODEL): the Hugging Face Hub, or a local mirror.

A model is named by its Hub id (`google/vit-base-patch16-224`). With a mirror directory
(THANOSQL_MODEL_MIRROR), `<mirror>/<hub id>/` holds the model as `save_pretrained` writes it
plus `SHA256SUMS` (`sha256sum` format, one line per file): every file listed is checked, and
nothing else is taken. Without one, `huggingface_hub` downloads the files of the model's
revision (checking each against the Hub's own sha256), into the workspace's cache.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from thanosql.errors import DataError

log = logging.getLogger(__name__)
MANIFEST = "SHA256SUMS"
# What an image classifier needs from a Hub repository: its config, weights and image processor.
_HUB_FILES = ["config.json", "preprocessor_config.json", "*.safetensors", "pytorch_model.bin"]


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
            available = sorted(str(path.parent.relative_to(Path(self.mirror).expanduser())) for path in Path(self.mirror).expanduser().glob(f"**/{MANIFEST}"))
            raise DataError(
                f"Model {name!r} is not in the model mirror {self.mirror} (no {name}/{MANIFEST} there).",
                hint=(f"Mirrored models: {', '.join(available[:20])}. " if available else "The mirror holds no models yet. ")
                + f"Copy the model's save_pretrained directory to {self.mirror}/{name}/ with `sha256sum * > {MANIFEST}` in it, or unset THANOSQL_MODEL_MIRROR to download.",
            )
        return directory

    def fetch(self, name: str, target: Path, progress: Callable[[str], None] = log.info) -> str:
        """Model `name`'s files, verified, copied into the new directory `target`; returns where they came from."""
        mirrored = self.mirrored(name)
        if mirrored is not None:
            files = _verified_manifest(mirrored)
            target.mkdir(parents=True)
            for relative in files:
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(mirrored / relative, target / relative)
            progress(f"using {name} from mirror {self.mirror} ({len(files)} files, sha256 verified)")
            return f"mirror {self.mirror}"
        return self._download(name, target, progress)

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
