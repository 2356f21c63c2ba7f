"""A local stand-in for S3: s3://bucket/key is <root>/s3/bucket/key.

Only what the pipeline needs: download an S3 prefix into a job's /opt/ml path (hard links, so
a 1M-row input costs no copy), upload a job's output folder, and hash what a step reads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from pipeline_steps.common.contract import DataError
from pipeline_steps.common.digest import sha256_file


class StorageError(DataError):
    pass


class LocalS3:
    def __init__(self, root: Path):
        self.root = Path(root) / "s3"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, uri: str) -> Path:
        """The local path of an s3:// URI (a plain local path is taken as it is)."""
        if not uri.startswith("s3://"):
            return Path(uri)
        bucket_key = uri[len("s3://") :]
        if not bucket_key or bucket_key.startswith("/") or ".." in bucket_key.split("/"):
            raise StorageError(f"not a usable S3 URI: {uri!r}")
        return self.root / bucket_key

    def objects(self, uri: str) -> list[tuple[str, Path]]:
        """(relative key, file) for every object under an S3 prefix, sorted by key.

        As in S3, a prefix need not end at a folder boundary, and a prefix that names one
        object exactly yields that object under its own file name.
        """
        base = self.path(uri)
        if base.is_file():
            return [(base.name, base)]
        found: list[tuple[str, Path]] = []
        if base.is_dir():
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                found.append((path.relative_to(base).as_posix(), path))
            return found
        parent, stem = base.parent, base.name
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if child.name.startswith(stem):
                    if child.is_file():
                        found.append((child.name[len(stem) :].lstrip("/") or child.name, child))
                    else:
                        for path in sorted(p for p in child.rglob("*") if p.is_file()):
                            found.append((path.relative_to(parent).as_posix()[len(stem) :].lstrip("/"), path))
        return found

    def download(self, uri: str, destination: Path, *, shard: tuple[int, int] | None = None) -> int:
        """Places the objects under `uri` into `destination`; returns how many.

        shard=(i, n) keeps every n-th object from the i-th: SageMaker's ShardedByS3Key.
        """
        objects = self.objects(uri)
        if not objects:
            raise StorageError(f"no objects at {uri} (local folder {self.path(uri)})")
        if shard is not None:
            index, count = shard
            objects = objects[index::count]
        destination.mkdir(parents=True, exist_ok=True)
        for key, source in objects:
            target = destination / key
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source, target)
        return len(objects)

    def upload_dir(self, source: Path, uri: str) -> None:
        """Moves a finished output folder to its S3 location (merging, like S3 uploads)."""
        target = self.path(uri)
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)

    def put_file(self, source: Path, uri: str) -> None:
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    def put_bytes(self, data: bytes, uri: str) -> None:
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def digest(self, uri: str) -> str:
        """sha256 over the keys and contents of every object under `uri`."""
        h = hashlib.sha256()
        for key, path in self.objects(uri):
            h.update(key.encode() + b"\0" + file_digest(path).encode() + b"\n")
        return h.hexdigest()


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file, memoised by (path, size, mtime) within this process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
