"""The dense-update-over-unused-rows finding: planted level pairs on both sides of its
thresholds (speed-up 1.5×, bytes ratio 10×), and a real run of the built-in study."""

import math

import pytest

from explain_helpers import view
from scalelab._explain import explain_views
from scalelab._explain._embedding_update import rule_dense_update_over_unused_rows, steps_of


def _spec(optim, vocab):
    return {"data": {"dataset": "text", "vocab": vocab, "seq_len": 20, "n_samples": 1000, "validation": 0.2},
            "model": {"kind": "layers", "layers": [{"kind": "embedding", "vocab": vocab, "dim": 32},
                                                   {"kind": "lstm", "units": 32, "steps": 20}]},
            "optim": {"name": optim, "lr": 0.003}, "train": {"batch_size": 32, "epochs": 3}}


def _pair(vocab, dense_step, lazy_step, acc=(0.9, 0.95), lazy_acc=(0.91, 0.98), optims=("adam", "lazy_adam")):
    levels = []
    for optim, step, a in ((optims[0], dense_step, acc), (optims[1], lazy_step, lazy_acc)):
        v = view({"optim.name": optim, "data.vocab": vocab}, _spec(optim, vocab), {})
        steps = steps_of(v.spec)
        v.wall_s = [step * steps] * 3
        v.epochs_by_seed = [[{"test_acc": a[0]}, {"test_acc": a[1]}, {"test_acc": a[1]}]] * 3
        levels.append(v)
    for v in levels:
        v.peers = levels
    return levels


def test_fires_with_the_measured_share_bytes_speedup_and_accuracy_change():
    dense, lazy = _pair(200000, 0.30, 0.06)
    assert steps_of(dense.spec) == 3 * 25
    [f] = rule_dense_update_over_unused_rows(dense, dense)
    ev = f.evidence
    assert ev["speedup"] == pytest.approx(5.0) and ev["share_unused_rows"] == pytest.approx(0.8)
    assert ev["bytes_per_step"] == 32 * 200000 * 32 and ev["row_sparse_bytes_per_step"] == 40 * 640 * 32
    assert ev["test_acc_epoch1"] == 0.9 and ev["remedy_test_acc_final"] == 0.98
    assert "80% of each training step" in f.text and "5.0× faster" in f.text and "0.950 → 0.980" in f.text
    assert rule_dense_update_over_unused_rows(lazy, dense) == []          # the remedy level itself: silent
    assert "moments and weights of all 200,000 rows" in f.text and "skip Adam's moment decay" in f.text


def test_sgd_bytes_and_wording_follow_its_family_no_moment_buffers():
    """Dense SGD reads p and g and writes p (+ the gradient formed): 4 values per table value,
    16·V·d bytes; sparse SGD 6 per used value (gather, gradient, update): 24 bytes. No moments
    to mention, and the row-sparse step is exactly SGD's."""
    dense, sparse = _pair(200000, 0.30, 0.06, optims=("sgd", "sparse_sgd"))
    [f] = rule_dense_update_over_unused_rows(dense, dense)
    ev = f.evidence
    assert ev["bytes_per_step"] == 16 * 200000 * 32 and ev["row_sparse_bytes_per_step"] == 24 * 640 * 32
    assert ev["remedy"] == "sparse_sgd"
    assert "updates the weights of all 200,000 rows" in f.text and "moment" not in f.text
    assert "the same update as dense sgd" in f.text and "about 102 MB" in f.text
    # a dense optimizer is paired only with the row-sparse form of itself
    adam, lazy = _pair(200000, 0.30, 0.06)
    dense.peers = adam.peers = [dense, lazy, adam, sparse]
    assert rule_dense_update_over_unused_rows(dense, dense)[0].evidence["remedy"] == "sparse_sgd"
    assert rule_dense_update_over_unused_rows(adam, adam)[0].evidence["remedy"] == "lazy_adam"


@pytest.mark.parametrize("vocab, dense, lazy, why", [
    (200000, 0.08, 0.06, "1.33× is within timing noise"),
    (2000, 0.30, 0.06, "the bytes do not explain it: 2,000 rows × 32 vs at most 640 used"),
])
def test_silent_below_either_threshold(vocab, dense, lazy, why):
    d, _ = _pair(vocab, dense, lazy)
    assert rule_dense_update_over_unused_rows(d, d) == [], why


def test_silent_without_a_row_sparse_peer():
    d, lazy = _pair(200000, 0.3, 0.06)
    d.peers = [d]
    assert rule_dense_update_over_unused_rows(d, d) == []
    assert not math.isnan(d.wall_s[0])


def test_the_builtin_study_finds_the_dense_update_on_its_largest_vocabulary(tmp_path):
    """A shrunken real run (2 seeds, 1 epoch; vocabularies 2,000 and 200,000): dense Adam's
    step at 200,000 words moves 205 MB per model against 0.4 MB for lazy Adam (500×), so
    its training step is several times the lazy one on any CPU, and explain must say so;
    the rule reads the engine's training-only seconds, which exclude setup and evaluation."""
    import tomllib

    from scalelab import Store, builtin_studies, run_study
    from scalelab._explain import study_views
    from scalelab._explain._embedding_update import step_seconds
    from scalelab._spec import parse_spec

    raw = tomllib.loads(builtin_studies()["embedding-size"].read_text())
    raw["arms"] = {k: v for k, v in raw["arms"].items() if k in ("v2k", "v200k")}
    for arm in raw["arms"].values():
        arm["model.layers"][1]["steps"] = 10
    raw["descriptions"] = {k: v for k, v in raw["descriptions"].items() if "v20k" not in k and "v2m" not in k}
    raw.update(seeds=2)
    raw["train"]["epochs"] = 1
    raw["data"].update(n_samples=400, seq_len=10)
    spec = parse_spec(raw)
    store = Store(tmp_path / "e.db")
    run_study(spec, store)
    views = {(v.level["arm"], v.level["optim.name"]): v for v in study_views(store, "embedding-size")}
    for v in views.values():     # training-only seconds are recorded, and are less than the whole trial's
        assert len(v.train_s) == 2 and all(0 < tr < w for tr, w in zip(v.train_s, v.wall_s)), (v.train_s, v.wall_s)
    found = explain_views(study_views(store, "embedding-size"))
    hits = {f.level["arm"]: f for f in found if f.id == "dense-update-over-unused-rows"}
    assert "v2k" not in hits                               # 2,000 rows: the bytes do not explain a gap
    ratio = step_seconds(views["v200k", "adam"]) / step_seconds(views["v200k", "lazy_adam"])
    assert "v200k" in hits, ratio
    ev = hits["v200k"].evidence
    assert ev["speedup"] == pytest.approx(ratio) and ratio >= 1.5
    assert ev["bytes_per_step"] == 32 * 200000 * 32 and ev["bytes_per_step"] / ev["row_sparse_bytes_per_step"] == 500


# ----------------------------------------------------------------------------- issue 33

def test_the_remedy_is_also_said_in_keras_terms_and_per_model():
    dense, _ = _pair(200000, 0.30, 0.06)
    [f] = rule_dense_update_over_unused_rows(dense, dense)
    assert "ms per model and step" in f.text and "MB read and written per model and step" in f.text
    for words in ("tfa.optimizers.LazyAdam", "Keras SGD", "Embedding(trainable=False)", "TextVectorization(max_tokens"):
        assert words in f.text and words in f.evidence["keras_remedy"]


def test_vocabulary_step_ratio_answers_200k_to_2m_with_the_measured_ratio_both_sides():
    from scalelab._explain._vocab_scaling import rule_vocabulary_step_ratio

    small, big = _pair(200000, 0.19, 0.0128), _pair(2000000, 1.52, 0.0131)
    tiny = _pair(2000, 0.01, 0.009)
    levels = [*tiny, *small, *big]
    for v in levels:
        v.peers = levels
    dense_big, lazy_big = big
    [f] = rule_vocabulary_step_ratio(dense_big, dense_big)
    ev = f.evidence
    assert (ev["vocab_from"], ev["vocab_to"]) == (200000, 2000000)             # the next smaller, not 2,000
    assert ev["ratio"] == pytest.approx(1.52 / 0.19) and ev["grew"] and ev["bytes_ratio"] == pytest.approx(10)
    assert "from 200,000 to 2,000,000 words" in f.text and "8.0× measured here" in f.text
    assert "went from 190 to 1,520 ms per model" in f.text and "(205 → 2,048 MB)" in f.text
    assert "it grew because adam updates every row" in f.text
    [g] = rule_vocabulary_step_ratio(lazy_big, dense_big)                    # the row-sparse optimizer: no growth
    assert not g.evidence["grew"] and "did not grow beyond timing noise" in g.text
    assert rule_vocabulary_step_ratio(small[0], dense_big) == []             # not the largest vocabulary: silent
    lone = _pair(2000000, 1.5, 0.01)
    for v in lone:
        v.peers = lone
    assert rule_vocabulary_step_ratio(lone[0], lone[0]) == []                # nothing smaller to compare with
