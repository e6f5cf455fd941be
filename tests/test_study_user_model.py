"""scalelab.keras.study and scalelab.torch_study (issue 32): the user's own model over the
factors they name, across seeds, on copies, stored and explained like any study. Oracles: the
framework itself (a plain Keras fit of the same clone, a hand-written PyTorch loop from the same
seed give the stored per-epoch losses), the user's objects compared before and after, and
the rules on the stored runs (the clipped cross-entropy fires on raw pixels, not on /255)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import scalelab
from scalelab import Store

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "gallery"))
from _data import pixels  # noqa: E402


def _stored(db: str, name: str) -> dict:
    store = Store(db, readonly=True)
    try:
        info = store.require_study(name)
        return {(json.dumps(t["level"], sort_keys=True), t["seed"]): [e["train_loss"] for e in store.epochs(t["id"])]
                for t in store.trials(info["id"])}
    finally:
        store.close()


def test_torch_study_runs_copies_matches_a_plain_loop_and_resumes(tmp_path):
    X, y = pixels()
    X = X.astype("float32")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = copy.deepcopy(model.state_dict())
    db = str(tmp_path / "t.db")
    vary = {"input.scale": ["1/255"], "lr": [1e-3, 1e-2]}
    scalelab.torch_study(model, nn.CrossEntropyLoss(), opt, X, y, vary=vary, seeds=2, epochs=3, batch_size=32,
                         db=db, name="mine", probes="none", verbose=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # the user's model untouched
    assert not opt.state                                                          # and their optimizer
    got = _stored(db, "mine")
    assert sorted(got) == sorted((json.dumps({"input.scale": "1/255", "optim.lr": lr}, sort_keys=True), s)
                                 for lr in (1e-3, 1e-2) for s in (0, 1))

    # oracle: the same copy trained by a plain loop, written out here
    for lr in (1e-3, 1e-2):
        for seed in (0, 1):
            m = copy.deepcopy(model)
            torch.manual_seed(seed)
            for mod in m.modules():
                if hasattr(mod, "reset_parameters"):
                    mod.reset_parameters()
            o = torch.optim.Adam(m.parameters(), lr=lr)
            xt, yt = torch.as_tensor(X * np.float32(1 / 255)), torch.as_tensor(y)
            g, losses = torch.Generator().manual_seed(seed), []
            for _ in range(3):
                order, total = torch.randperm(len(xt), generator=g), 0.0
                for i in range(0, len(xt), 32):
                    idx = order[i:i + 32]
                    o.zero_grad()
                    loss = nn.functional.cross_entropy(m(xt[idx]), yt[idx])
                    loss.backward()
                    o.step()
                    total += float(loss.detach()) * len(idx)
                losses.append(total / len(xt))
            key = (json.dumps({"input.scale": "1/255", "optim.lr": lr}, sort_keys=True), seed)
            assert got[key] == pytest.approx(losses, rel=1e-5)

    # a rerun with one more seed trains only the new seed
    scalelab.torch_study(model, nn.CrossEntropyLoss(), opt, X, y, vary=vary, seeds=3, epochs=3, batch_size=32,
                         db=db, name="mine", probes="none", verbose=False)
    again = _stored(db, "mine")
    assert len(again) == 6 and all(again[k] == got[k] for k in got)


def test_torch_study_bad_factor_is_one_line(tmp_path):
    model = nn.Sequential(nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unknown factor 'dropout'; use one of input.scale"):
        scalelab.torch_study(model, nn.CrossEntropyLoss(), opt, np.zeros((8, 4), "float32"), np.zeros(8, "int64"),
                             vary={"dropout": [0.1]}, name="bad", db=str(tmp_path / "b.db"))
    with pytest.raises(ValueError, match=r"vary\['optim.name'\]: 'lbfgs' is not one of"):
        scalelab.torch_study(model, nn.CrossEntropyLoss(), opt, np.zeros((8, 4), "float32"), np.zeros(8, "int64"),
                             vary={"optimizer": ["lbfgs"]}, name="bad", db=str(tmp_path / "b.db"))
    assert not (tmp_path / "b.db").exists()   # checked before anything is stored


KERAS_STUDY = r'''
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from _data import pixels
import keras
import scalelab.keras

X, y = pixels(); X = X.astype("float32")
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
w0 = [w.copy() for w in model.get_weights()]
findings = scalelab.keras.study(model, X, y, vary={"input.scale": ["1", "1/255"]}, seeds=2, epochs=4, batch_size=32,
                                db=sys.argv[1], name="ks", verbose=False)
untouched = all(np.array_equal(a, b) for a, b in zip(w0, model.get_weights()))
# oracle: the same clone compiled and fitted by plain Keras, no scalelab callback
plain = {}
for seed in (0, 1):
    keras.utils.set_random_seed(seed)
    c = keras.models.clone_model(model)
    c.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
    plain[seed] = c.fit(X * np.float32(1 / 255), y, epochs=4, batch_size=32, verbose=0).history["loss"]
print(json.dumps({"untouched": untouched, "iterations": int(model.optimizer.iterations.numpy()),
                  "findings": [[f.id, f.role, f.level] for f in findings], "plain": plain}))
'''


def test_keras_study_runs_clones_stores_levels_and_finds_the_clip(tmp_path):
    pytest.importorskip("keras")
    db = str(tmp_path / "k.db")
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", KERAS_STUDY, db, str(ROOT / "examples" / "gallery")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["untouched"] and res["iterations"] == 0
    causes = {(i, json.dumps(lv, sort_keys=True)) for i, role, lv in res["findings"] if role == "cause"}
    assert ("input-scale", json.dumps({"input.scale": "1"})) in causes   # the clipped zero gradient: its consequence
    assert not any(lv == json.dumps({"input.scale": "1/255"}) for _, lv in causes)
    got = _stored(db, "ks")
    assert len(got) == 4
    for seed in (0, 1):   # the stored 1/255 epochs are what plain Keras trains from the same seed
        assert got[(json.dumps({"input.scale": "1/255"}), seed)] == pytest.approx(res["plain"][str(seed)], rel=1e-4)
    assert min(got[(json.dumps({"input.scale": "1"}), s)][-1] for s in (0, 1)) > 5   # the clipped plateau
    show = subprocess.run([sys.executable, "-m", "scalelab", "show", "--db", db, "ks"], capture_output=True, text=True,
                          timeout=120)
    assert show.returncode == 0 and "input.scale" in show.stdout and "1/255" in show.stdout, show.stderr
