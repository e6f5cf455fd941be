"""Arrays of any size in the store: raw bytes cut into chunks of at most ``CHUNK`` bytes.

SQLite refuses a blob over ``SQLITE_MAX_LENGTH`` (1e9 bytes by default; a 2.3 GB checkpoint
failed with "BLOB longer than INT_MAX bytes"), so a set of arrays is written as one byte
stream — the arrays one after another, C order — cut into rows of table ``chunks`` named by
``blob`` and their index. A *manifest* (JSON, kept by the caller) lists each array's name,
dtype, shape and offset in the stream, and the stream's sha256, checked on every read: a
damaged or truncated store is an error that names the blob, never silently wrong numbers.

Nothing is pickled and nothing larger than one chunk (plus the arrays themselves) is held
in memory while writing or reading; the store stays one file to copy.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # numpy loads where arrays are written or read, not with the store
    import numpy as np

CHUNK = 64 << 20          # 64 MiB per row: far below SQLite's 1e9-byte limit, a few rows per GB
FORMAT = 1


def write_arrays(conn, blob: str, arrays: dict[str, np.ndarray], chunk: int = CHUNK) -> dict:
    """Write ``arrays`` as blob ``blob`` (replacing one of that name), inside the caller's
    transaction; returns the manifest to keep (JSON-serialisable)."""
    import numpy as np

    delete_blob(conn, blob)
    digest, entries, offset = hashlib.sha256(), [], 0
    buf, idx = bytearray(), 0

    def flush(final: bool = False):
        nonlocal buf, idx
        while len(buf) >= chunk or (final and buf):
            piece = bytes(buf[:chunk])
            conn.execute("INSERT INTO chunks(blob, idx, data) VALUES (?,?,?)", (blob, idx, sqlite3.Binary(piece)))
            del buf[:chunk]
            idx += 1

    for name, a in arrays.items():
        a = np.asarray(a)
        if not a.flags.c_contiguous:
            a = a.copy(order="C")   # (np.ascontiguousarray would turn a 0-d array into 1-d)
        raw = memoryview(a.reshape(-1).view(np.uint8)) if a.size else memoryview(b"")
        entries.append(dict(name=name, dtype=a.dtype.str, shape=list(a.shape), offset=offset, nbytes=a.nbytes))
        for i in range(0, len(raw), chunk):   # never a copy of the whole array: one chunk at a time
            part = raw[i: i + chunk]
            digest.update(part)
            buf += part
            flush()
        offset += a.nbytes
    flush(final=True)
    return dict(format=FORMAT, blob=blob, nbytes=offset, chunks=idx, chunk=chunk, sha256=digest.hexdigest(),
                arrays=entries)


def read_arrays(conn, manifest: dict) -> dict[str, np.ndarray]:
    """The arrays a manifest describes, read chunk by chunk into their own buffers; ValueError
    when the chunks are missing or do not hash to the manifest's sha256."""
    import numpy as np

    if manifest.get("format") != FORMAT:
        raise ValueError(f"stored arrays of format {manifest.get('format')}, not {FORMAT}")
    blob = manifest["blob"]
    out = {e["name"]: np.empty(e["shape"], dtype=np.dtype(e["dtype"])) for e in manifest["arrays"]}
    views = [(e["offset"], memoryview(out[e["name"]].reshape(-1).view(np.uint8)) if e["nbytes"] else None)
             for e in manifest["arrays"]]
    digest, pos, seen = hashlib.sha256(), 0, 0
    rows = conn.execute("SELECT idx, data FROM chunks WHERE blob=? ORDER BY idx", (blob,))
    for idx, data in rows:
        if idx != seen:
            break
        seen += 1
        data = memoryview(data)
        digest.update(data)
        end = pos + len(data)
        for start, view in views:   # copy the part of this chunk that falls in each array
            if view is None or start >= end or start + len(view) <= pos:
                continue
            a, b = max(pos, start), min(end, start + len(view))
            view[a - start: b - start] = data[a - pos: b - pos]
        pos = end
    if seen != manifest["chunks"] or pos != manifest["nbytes"] or digest.hexdigest() != manifest["sha256"]:
        raise ValueError(f"stored arrays {blob!r} are incomplete or damaged ({seen} of {manifest['chunks']} chunks, "
                         f"{pos} of {manifest['nbytes']} bytes, checksum {'ok' if digest.hexdigest() == manifest['sha256'] else 'wrong'})")
    return out


def delete_blob(conn, blob: str) -> None:
    conn.execute("DELETE FROM chunks WHERE blob=?", (blob,))


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, sort_keys=True)
