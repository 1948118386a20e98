"""Saving and loading models: one file, no pickle, written atomically.

The file is a NumPy ``.npz`` archive (a zip) holding:
  ``__dlkernels__``  the format tag and version, as UTF-8 bytes;
  ``config``         JSON (as UTF-8 bytes): architecture, compile settings, seed;
  ``weights/i``      every weight array in ``model.get_weights()`` order;
  ``optimizer/i``    the optimizer's iteration count and state arrays.
It is read with ``allow_pickle=False``, so loading a file from a stranger can run no
code.  Writing goes to a temporary file in the same folder, is flushed and fsync'ed,
then renamed over the target: a crash mid-save leaves the previous file intact.
"""
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from . import distribution

FORMAT = "dlkernels-model"
VERSION = 1


def atomic_write(path, data):
    """Write ``data`` (bytes) to ``path`` so that the file is either old or new, whole.
    Under data parallelism over several processes, rank 0 alone writes (the others
    return at once)."""
    path = os.fspath(path)
    if not distribution.writes_files():
        return
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".dlk", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:   # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _bytes(text):
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def pack(config, weights, optimizer_state, kind="model"):
    """The file's bytes."""
    arrays = {"__dlkernels__": _bytes(json.dumps({"format": FORMAT, "version": VERSION,
                                                  "kind": kind})),
              "config": _bytes(json.dumps(config))}
    for i, w in enumerate(weights):
        arrays[f"weights/{i}"] = np.asarray(w, order="C")
    for i, a in enumerate(optimizer_state or []):
        arrays[f"optimizer/{i}"] = np.asarray(a, order="C")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def unpack(path):
    """(config, weights, optimizer_state, kind) from a file written by :func:`pack`.

    Raises ValueError naming the file and the problem for anything else: a missing,
    truncated or corrupted file, a plain .npz, a Keras file, random bytes.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"filepath: expected a path (str or os.PathLike), got "
                        f"{type(path).__name__}")
    path = os.fspath(path)
    if (b"\0" if isinstance(path, bytes) else "\0") in path:
        raise ValueError("filepath: expected a path without NUL characters")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"filepath: no such file {path!r}") from None
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise ValueError(f"filepath: {path!r} is not a dlkernels model file (not a zip "
                         f"archive; truncated, corrupted or of another format)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            names = set(data.files)
            if "__dlkernels__" not in names or "config" not in names:
                raise ValueError(f"filepath: {path!r} is not a dlkernels model file (no "
                                 f"dlkernels header; a plain .npz or another program's file?)")
            header = json.loads(data["__dlkernels__"].tobytes().decode("utf-8"))
            if header.get("format") != FORMAT:
                raise ValueError(f"filepath: {path!r} has format {header.get('format')!r}, "
                                 f"expected {FORMAT!r}")
            if header.get("version") != VERSION:
                raise ValueError(f"filepath: {path!r} is format version "
                                 f"{header.get('version')!r}; this dlkernels reads {VERSION}")
            config = json.loads(data["config"].tobytes().decode("utf-8"))
            weights = _numbered(data, names, "weights")
            opt = _numbered(data, names, "optimizer")
    except Exception as exc:  # zip, CRC, JSON, NumPy format errors: all mean "damaged"
        if str(exc).startswith("filepath:"):
            raise
        raise ValueError(f"filepath: {path!r} is damaged and cannot be read "
                         f"({type(exc).__name__}: {exc})") from None
    return config, weights, opt, header.get("kind", "model")


def _numbered(data, names, prefix):
    count = sum(1 for n in names if n.startswith(prefix + "/"))
    arrays = []
    for i in range(count):
        key = f"{prefix}/{i}"
        if key not in names:
            raise ValueError(f"the file lacks array {key!r}")
        a = data[key]
        if a.dtype.kind not in "fiu":
            raise ValueError(f"array {key!r} has dtype {a.dtype}, expected a numeric one")
        arrays.append(a)
    return arrays
