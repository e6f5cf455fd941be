"""The data sets a spec can name: one :class:`Entry` each, with the module that loads it,
the shapes it gives and what guarantees its content (a checksum, or a seeded generator).

Adding a data set is one module of this package defining
``load(data, data_dir, trajectory) -> Dataset`` plus one ``register(Entry(...))`` line
below. A spec's ``data.dataset`` accepts exactly the registered names. The loading module
is imported only when its data set is loaded, so the spec (and ``scalelab ls``) never pays
for scipy, scikit-learn or a generator it does not use.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from ._errors import DataError

if TYPE_CHECKING:
    from ._dataset import Dataset


@dataclass(frozen=True)
class Entry:
    name: str
    module: str            # a module of scalelab.data with load(data, data_dir, trajectory) -> Dataset
    shapes: str            # what its arrays are, for `scalelab data list` and the docs
    checksum: str          # what makes its content the same everywhere
    holdout_optional: bool = False   # data.holdout = false (train and evaluate on all rows) allowed

    def load(self, data, data_dir: str | None = None, trajectory=None):
        return import_module(f"scalelab.data.{self.module}").load(data, data_dir, trajectory)


DATASETS: dict[str, Entry] = {}


def register(entry: Entry) -> Entry:
    if entry.name in DATASETS:
        raise ValueError(f"data set {entry.name!r} is registered twice")
    DATASETS[entry.name] = entry
    return entry


SEEDED = "generated: the same arrays for the same options and data.split_seed"
register(Entry("fashion-mnist", "_fashion_mnist", "X (60000, 784) uint8 images 28×28, y (60000,) 10 classes; "
               "test 10000", "sha256 of each decompressed IDX file (data.verify)"))
for _name, _shapes in (("digits", "X (1797, 64) 8×8 images, 10 classes"),
                       ("breast_cancer", "X (569, 30), 2 classes"), ("wine", "X (178, 13), 3 classes"),
                       ("diabetes", "X (442, 10), y (442, 1) regression"), ("iris", "X (150, 4), 3 classes")):
    register(Entry(_name, "_sklearn", _shapes + "; split by data.test_fraction", "bundled with scikit-learn",
                   holdout_optional=True))
register(Entry("file", "_file", "a user's .npz (X, y[, X_test, y_test]) or .csv; token ids with data.vocab",
               "the file's own (read as given)"))
register(Entry("heatmap", "_synthetic", "X (n, 576) 24×24 images in [0, 1], y (n, 576) density maps", SEEDED))
register(Entry("sin-plus-y", "_synthetic", "X (n, 2) on [-π, π]², y (n, 1) = sin(x) + y; test on x in [π, 3π]",
               SEEDED))
register(Entry("text", "_text", "token ids (n, data.seq_len) int64 over data.vocab, 2 classes", SEEDED))
register(Entry("trajectories", "_trajectories", "observed (n, n_obs, 2) → future (n, n_future, 2) positions; "
               "or a user's .npz", SEEDED))
register(Entry("pn-synthetic", "_pn", "X (n, p) two Gaussian classes, p ≫ n, known Bayes accuracy", SEEDED))
register(Entry("fmnist-pair", "_pn", "two Fashion-MNIST classes as a p ≫ n problem (784 pixels, n rows)",
               "Fashion-MNIST's sha256 (data.verify); rows drawn by data.split_seed"))
register(Entry("moons", "_moons", "X (n, 2) two interleaving half circles, 2 classes; noise data.noise", SEEDED))


_DATA_CACHE: dict[str, Dataset] = {}


def dataset_key(data, data_dir: str | None = None, trajectory=None) -> str:
    """What identifies a loaded data set in the per-process cache (executors seed it remotely)."""
    key = (data.dataset, data.dir or data_dir, data.verify, data.path, data.target, data.task,
           data.test_fraction, data.split_seed, data.n_samples, data.noise)
    if data.vocab or data.dataset == "text":
        key += (data.vocab, data.seq_len, data.text_rule, data.text_lengths)
    if not data.holdout:
        key += ("no-holdout",)
    if trajectory is not None and data.dataset == "trajectories":   # the generator's own options
        key += (repr(sorted(trajectory.model_dump().items())),)
    if data.generator is not None:   # the p≫n generator's parameters
        key += (repr(data.generator),)
    return repr(key)


def load_dataset(data, data_dir: str | None = None, trajectory=None) -> Dataset:
    """The raw data set a resolved ``data`` section names (cached per process); ``trajectory``:
    the spec's ``[trajectory]`` section, for ``data.dataset = "trajectories"``."""
    key = dataset_key(data, data_dir, trajectory)
    if not data.holdout and not DATASETS[data.dataset].holdout_optional:
        sets = [e.name for e in DATASETS.values() if e.holdout_optional]
        raise DataError(f"data.holdout = false (train and evaluate on all rows) is for the scikit-learn sets "
                        f"({', '.join(sets)}), not {data.dataset!r}; remove it")
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = DATASETS[data.dataset].load(data, data_dir, trajectory)
    return _DATA_CACHE[key]
