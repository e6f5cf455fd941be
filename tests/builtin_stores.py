"""Small stores of every built-in study (few seeds, a data subset, one or two epochs), for
tests that render what the studies' reports and CLI show. Fashion-MNIST studies run on
the synthetic IDX files of ``conftest.write_fashion_like``."""

from __future__ import annotations

from pathlib import Path

from scalelab import Store, builtin_spec, builtin_studies, run_study
from scalelab._study import with_overrides

# overrides that shrink each built-in study to seconds while keeping its levels and probes
SHRINK = {
    "input-scaling": ["seeds=2", "train.epochs=1", "data.train_subset=600", "data.test_subset=200",
                      "probes.points_per_decade=3"],
    "weight-vs-feature-scale": ["seeds=2", "train.epochs=1", "data.train_subset=600", "data.validation=100",
                                "data.test_subset=200"],
    "feature-scales": ["seeds=2", "train.epochs=2", "probes.preset='standard'", "probes.points_per_decade=3"],
    "function-approximation": ["seeds=2", "train.epochs=2", "data.n_samples=300", "data.validation=100"],
    "batchnorm-regression": ["seeds=2", "train.epochs=2", "data.n_samples=120", "data.validation=40"],
    # the 2M arm keeps its 2,000,000 rows at d = 4 (32 MB per table instead of 256)
    "embedding-size": ["seeds=2", "train.epochs=1", "data.n_samples=200",
                       'arms.v2m={"data.vocab"=2000000, "model.layers"=[{kind="embedding", vocab=2000000, dim=4}, '
                       '{kind="lstm", units=32, steps=20}]}'],
    "trajectories": ["seeds=2", "train.epochs=1", "data.n_samples=300", "data.validation=100", "trajectory.n_test=100",
                     "trajectory.units=8", "trajectory.density_samples=20"],
    "run-variance": ["seeds=5", "train.epochs=2", "data.generator={p = 200}", "cv.folds=3", "cv.inner_folds=2",
                     "cv.inner_seeds=1"],
    "run-variance-fmnist": ["seeds=5", "train.epochs=2", "cv.folds=3", "cv.repeats=2", "cv.inner_folds=2",
                            "cv.inner_seeds=1"],
}


def small_builtin_store(name: str, db: Path, fmnist_dir: Path, workers: int = 1) -> Path:
    """Run a shrunken built-in study into ``db`` (added to whatever is there)."""
    over = list(SHRINK[name])
    if builtin_spec(name).data.dataset in ("fashion-mnist", "fmnist-pair"):
        over += [f"data.dir='{fmnist_dir}'", "data.verify=false"]
    run_study(with_overrides(builtin_spec(name), over), Store(db), workers=workers)
    return db


def all_builtin_stores(db: Path, fmnist_dir: Path, workers: int = 1) -> list[str]:
    names = sorted(builtin_studies())
    for name in names:
        small_builtin_store(name, db, fmnist_dir, workers)
    return names
