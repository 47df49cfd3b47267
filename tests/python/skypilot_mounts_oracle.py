"""The oracle for file_mounts_digest: SkyPilot's serial procedure, restated from its spec.

SkyPilot's ``_deterministic_cluster_yaml_hash`` (sky/backends/backend_utils.py), the
file-mount part, written again here in our own words: one hashlib.sha256 fed with the
optional prefix, then per mount in ``sorted(file_mounts.items())`` order the
destination, ``file`` + raw digest or ``dir`` + an ``os.walk`` with sorted names, and
two NULs; gcloud's credential caches are named but their content is not fed (0.14.1).
Serial, str paths encoded as UTF-8, every file read with a 256 KiB buffer as SkyPilot's
``hash_file`` does. Also the baseline of bench/mounts_bench.py.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

_BUFFER = 2**18
# gcloud's credential caches: named in the stream, their content not fed (SkyPilot 0.14.1).
_SKIP_CONTENT = {
    name + suffix
    for name in ("credentials.db", "access_tokens.db")
    for suffix in ("", "-journal", "-wal", "-shm")
}


def _file_sha256(path: str) -> bytes:
    with open(path, "rb") as file:
        digest = hashlib.sha256()
        buffer = bytearray(_BUFFER)
        view = memoryview(buffer)
        while size := file.readinto(buffer):
            digest.update(view[:size])
    return digest.digest()


def skypilot_file_mounts_digest(file_mounts: Mapping[str, str], prefix: bytes = b"") -> str:
    config_hash = hashlib.sha256(prefix)
    for destination, source in sorted(file_mounts.items()):
        expanded = os.path.expanduser(source)
        config_hash.update(destination.encode("utf-8") + b"\0")
        if os.path.isfile(expanded):
            config_hash.update(b"file")
            if os.path.basename(expanded) not in _SKIP_CONTENT:
                config_hash.update(_file_sha256(expanded))
        elif os.path.isdir(expanded):
            config_hash.update(b"dir")
            for dirpath, dirnames, filenames in os.walk(expanded):
                config_hash.update(dirpath.encode("utf-8") + b"\0")
                dirnames.sort()  # in place: also the order os.walk descends in
                for name in dirnames:
                    config_hash.update(name.encode("utf-8") + b"\0")
                config_hash.update(b"\0")
                filenames.sort()
                for name in filenames:
                    config_hash.update(name.encode("utf-8") + b"\0")
                    if name not in _SKIP_CONTENT:
                        config_hash.update(_file_sha256(os.path.join(dirpath, name)))
                config_hash.update(b"\0")
        config_hash.update(b"\0\0")
    return config_hash.hexdigest()
