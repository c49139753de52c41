"""The training text: the Python standard library's sources (byte level).

Corpus = every regular file ``*.py`` under the corpus roots (default: the
directories ``/usr/lib/python3.*`` of Debian's interpreter; symbolic links and
``__pycache__`` are skipped), in sorted order of their paths relative to the
root's parent (``python3.11/argparse.py``). A file goes to the validation split
when the first byte of sha256(relative path) is below 13 (about 5%), to the
training split otherwise: the split depends on the path only, never on the
order or the contents. Each split is the concatenation of its files' bytes;
its size and sha256 are recorded in checkpoints and capture files.

Baselines (bits per byte on the validation split, counts from the training
split): unigram with add-one smoothing, bigram whose counts are smoothed
towards the unigram (Dirichlet prior, weight 1).
"""

import glob
import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import LmError

DEFAULT_ROOTS = "/usr/lib/python3.*"
VALIDATION_THRESHOLD = 13  # first byte of sha256(path) < 13: validation (13/256 ~ 5%)


@dataclass
class Corpus:
    roots: list
    train: np.ndarray  # uint8
    validation: np.ndarray  # uint8
    train_files: int = 0
    validation_files: int = 0
    info: dict = field(default_factory=dict)

    def split(self, name):
        if name == "train":
            return self.train
        if name == "validation":
            return self.validation
        raise LmError(f"split '{name}' is not known (allowed: train, validation)")


def resolve_roots(spec=None):
    """The corpus roots: a list of directories from a comma-separated list of
    paths or glob patterns (default /usr/lib/python3.*)."""
    spec = spec or os.environ.get("SATALAB_LM_CORPUS") or DEFAULT_ROOTS
    roots = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        matches = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
        roots.extend(m for m in matches if os.path.isdir(m))
    if not roots:
        raise LmError(f"corpus '{spec}' not found (allowed: directories holding *.py files, "
                      f"comma-separated, globs allowed; default {DEFAULT_ROOTS})")
    return roots


def corpus_files(roots):
    """[(relative path, absolute path)] of the corpus, sorted by relative path."""
    files = []
    for root in roots:
        base = os.path.dirname(os.path.abspath(root).rstrip("/"))
        for directory, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in names:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                files.append((os.path.relpath(path, base), path))
    files.sort()
    return files


def is_validation(relative_path):
    return hashlib.sha256(relative_path.encode("utf-8")).digest()[0] < VALIDATION_THRESHOLD


def load_corpus(spec=None):
    """Reads the corpus (about 12 MB for Python 3.11: a second)."""
    roots = resolve_roots(spec)
    files = corpus_files(roots)
    if not files:
        raise LmError(f"corpus '{','.join(roots)}' holds no *.py files (allowed: directories holding "
                      f"Python sources; default {DEFAULT_ROOTS})")
    parts = {"train": [], "validation": []}
    for relative, path in files:
        with open(path, "rb") as f:
            parts["validation" if is_validation(relative) else "train"].append(f.read())
    if not parts["validation"] or not parts["train"]:
        raise LmError(f"corpus '{','.join(roots)}' has {len(files)} *.py files, too few for a training "
                      f"and a validation split (allowed: a corpus of at least a few dozen files)")
    train = np.frombuffer(b"".join(parts["train"]), dtype=np.uint8)
    validation = np.frombuffer(b"".join(parts["validation"]), dtype=np.uint8)
    info = {
        "roots": ",".join(roots),
        "files": len(files),
        "train_files": len(parts["train"]),
        "validation_files": len(parts["validation"]),
        "train_bytes": int(train.size),
        "validation_bytes": int(validation.size),
        "train_sha256": hashlib.sha256(train.tobytes()).hexdigest(),
        "validation_sha256": hashlib.sha256(validation.tobytes()).hexdigest(),
    }
    return Corpus(roots, train, validation, len(parts["train"]), len(parts["validation"]), info)


def unigram_bits_per_byte(train, validation):
    counts = np.bincount(train, minlength=256).astype(np.float64) + 1.0
    p = counts / counts.sum()
    return float(-np.mean(np.log2(p[validation])))


def bigram_bits_per_byte(train, validation):
    unigram = np.bincount(train, minlength=256).astype(np.float64) + 1.0
    unigram /= unigram.sum()
    pairs = np.bincount(train[:-1].astype(np.int64) * 256 + train[1:], minlength=256 * 256)
    pairs = pairs.reshape(256, 256).astype(np.float64)
    p = (pairs + unigram[None, :]) / (pairs.sum(axis=1, keepdims=True) + 1.0)
    a, b = validation[:-1].astype(np.int64), validation[1:].astype(np.int64)
    return float(-np.mean(np.log2(p[a, b])))


def baselines(corpus):
    return {"unigram_bits_per_byte": unigram_bits_per_byte(corpus.train, corpus.validation),
            "bigram_bits_per_byte": bigram_bits_per_byte(corpus.train, corpus.validation)}


def evaluation_windows(data, context, count):
    """`count` windows of context + 1 bytes, evenly spaced over `data` (start
    offsets, deterministic); fewer when the split is short."""
    span = context + 1
    available = data.size - span
    if available < 0:
        raise LmError(f"split of {data.size} bytes is shorter than one window of context + 1 = {span} bytes")
    count = max(1, min(int(count), available // span + 1))
    if count == 1:
        return np.array([0], dtype=np.int64)
    return np.linspace(0, available, count).astype(np.int64)
