"""Dataset files are verified against their checksums, from a mirror or a download."""

from __future__ import annotations

import shutil

import pytest

from resources import DatasetSourceResource
from tests.conftest import MIRROR
from thanosql.errors import DataError
from thanosql_assets.defs import mnist

FILENAME, MD5S = mnist.SOURCE_FILES["labels"]


def test_mirror_file_with_a_known_checksum_is_used_in_place(tmp_path):
    source = DatasetSourceResource(cache_dir=str(tmp_path / "cache"), mirror=str(MIRROR))
    assert source.fetch(FILENAME, [], MD5S, progress=lambda _: None) == MIRROR / FILENAME


def test_mirror_file_with_a_wrong_checksum_is_refused(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(MIRROR / FILENAME, mirror / FILENAME)
    with open(mirror / FILENAME, "ab") as handle:
        handle.write(b"tampered")
    source = DatasetSourceResource(cache_dir=str(tmp_path / "cache"), mirror=str(mirror))
    with pytest.raises(DataError, match="Checksum mismatch"):
        source.fetch(FILENAME, [], MD5S, progress=lambda _: None)


def test_missing_mirror_file_says_where_it_looked(tmp_path):
    source = DatasetSourceResource(cache_dir=str(tmp_path / "cache"), mirror=str(tmp_path))
    with pytest.raises(DataError, match="not in the mirror directory"):
        source.fetch(FILENAME, [], MD5S, progress=lambda _: None)


def test_download_is_verified_before_it_is_kept(tmp_path):
    # A local file:// address stands in for the network; a file with the wrong checksum is not cached.
    wrong = tmp_path / "served" / FILENAME
    wrong.parent.mkdir()
    wrong.write_bytes(b"not mnist")
    right = tmp_path / "served-right" / FILENAME
    right.parent.mkdir()
    shutil.copy(MIRROR / FILENAME, right)
    source = DatasetSourceResource(cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="Checksum mismatch"):
        source.fetch(FILENAME, [wrong.as_uri()], MD5S, progress=lambda _: None)
    assert not (tmp_path / "cache" / FILENAME).exists()
    fetched = source.fetch(FILENAME, [wrong.as_uri(), right.as_uri()], MD5S, progress=lambda _: None)
    assert fetched == tmp_path / "cache" / FILENAME and fetched.read_bytes() == right.read_bytes()
