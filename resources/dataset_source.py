"""Where public datasets come from: their original download addresses, or a local mirror.

Every file is checked against the checksums its dataset declares before anything is built
from it, whether it was downloaded or read from the mirror.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg

from thanosql.errors import DataError

log = logging.getLogger(__name__)


def md5sum(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


class DatasetSourceResource(dg.ConfigurableResource):
    """`mirror`: a directory holding the dataset files (THANOSQL_DATASET_MIRROR); when unset,
    files are downloaded once into `cache_dir`."""

    cache_dir: str
    mirror: str | None = None
    timeout_s: float = 60.0

    def available_offline(self, filename: str) -> bool:
        """Whether `filename` can be had without a download: in the mirror, or already downloaded (unchecked here)."""
        if self.mirror:
            return (Path(self.mirror).expanduser() / filename).is_file()
        return (Path(self.cache_dir) / filename).is_file()

    def fetch(
        self,
        filename: str,
        urls: Sequence[str],
        md5s: Sequence[str],
        progress: Callable[[str], None] = log.info,
    ) -> Path:
        """A verified local copy of `filename`; `md5s` lists every checksum accepted for it."""
        if self.mirror:
            path = Path(self.mirror).expanduser() / filename
            if not path.is_file():
                raise DataError(
                    f"Dataset file {filename} is not in the mirror directory {self.mirror}.",
                    hint="Point THANOSQL_DATASET_MIRROR at a directory holding it, or unset it to download.",
                )
            self._verify(path, md5s, origin=f"mirror {self.mirror}")
            progress(f"using {filename} from mirror {self.mirror} (md5 verified)")
            return path

        cached = Path(self.cache_dir) / filename
        if cached.is_file() and md5sum(cached) in md5s:
            progress(f"using cached {filename} (md5 verified)")
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        failures = []
        for url in urls:
            progress(f"downloading {url}")
            with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as tmp:
                tmp_path = Path(tmp.name)
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as response, open(tmp_path, "wb") as out:
                    shutil.copyfileobj(response, out)
                self._verify(tmp_path, md5s, origin=url)
                tmp_path.replace(cached)
                return cached
            except (OSError, DataError) as error:
                failures.append(f"{url}: {error}")
                tmp_path.unlink(missing_ok=True)
        raise DataError(
            f"Could not download {filename}: " + "; ".join(failures),
            hint="Check the network, or set THANOSQL_DATASET_MIRROR to a directory that holds the file.",
        )

    @staticmethod
    def _verify(path: Path, md5s: Sequence[str], origin: str) -> None:
        actual = md5sum(path)
        if actual not in md5s:
            raise DataError(
                f"Checksum mismatch for {path.name} from {origin}: md5 {actual}, expected one of {', '.join(md5s)}.",
                hint="The file is corrupt or not the published one; replace it.",
            )
