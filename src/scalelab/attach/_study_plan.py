"""A study of the user's own model (``scalelab.keras.study``, ``scalelab.torch_study``): the
factors the user names, their levels (every combination), the seeds still to run, and what
is printed when the study is done. Framework-free: the runs themselves are in
attach/_study_keras.py and attach/_study_torch.py, on copies of the user's model.

A level is stored with the keys below, in the spec's own words where the factor is a spec
field (``input.scale``, ``optim.lr``, ``optim.name``, ``train.batch_size``), so the rules that
read the spec read the truth, and ``scalelab show``/``explain NAME`` compare the levels as they
compare a built-in study's."""

from __future__ import annotations

import itertools
import json

# the factors a study of the user's model can vary: the key stored, and the names accepted for it
FACTORS = {
    "input.scale": ("input.scale", "input_scale", "x_scale"),
    "optim.lr": ("optim.lr", "lr", "learning_rate"),
    "optim.name": ("optim.name", "optimizer"),
    "train.batch_size": ("train.batch_size", "batch_size"),
    "output_activation": ("output_activation",),
    "loss": ("loss",),
}
_ALIAS = {a: k for k, names in FACTORS.items() for a in names}
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop")


def factor_levels(vary: dict) -> list[dict]:
    """Every combination of the factors' values, as level dicts (the stored keys), in the
    order the user gave them. Bad input: one line naming the key and what is accepted."""
    if not isinstance(vary, dict) or not vary:
        raise ValueError("vary: name at least one factor and its values, e.g. vary={'input.scale': ['1', '1/255']}")
    keys, values = [], []
    for k, vals in vary.items():
        if k not in _ALIAS:
            raise ValueError(f"vary: unknown factor {k!r}; use one of {', '.join(FACTORS)} "
                             f"(also {', '.join(a for a in _ALIAS if a not in FACTORS)})")
        key = _ALIAS[k]
        if key in keys:
            raise ValueError(f"vary: {k!r} names the factor {key!r} twice")
        vals = list(vals) if isinstance(vals, (list, tuple)) else [vals]
        if not vals:
            raise ValueError(f"vary[{k!r}]: give at least one value")
        for v in vals:
            _check(key, v)
        keys.append(key)
        values.append([_stored(v) for v in vals])
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def _check(key: str, v) -> None:
    if key in ("input.scale", "optim.lr"):
        from .._spec._sections import _parse_number

        try:
            x = float(_parse_number(v))
        except (TypeError, ValueError):
            x = float("nan")
        if not x > 0:
            raise ValueError(f"vary[{key!r}]: {v!r} is not a positive number (write 0.001, or '1/255')")
    elif key == "optim.name" and (not isinstance(v, str) or v.lower() not in OPTIMIZERS):
        raise ValueError(f"vary['optim.name']: {v!r} is not one of {', '.join(OPTIMIZERS)}")
    elif key == "train.batch_size" and not (isinstance(v, int) and v >= 1):
        raise ValueError(f"vary['train.batch_size']: {v!r} is not a positive whole number")


def _stored(v):
    """A value as the level stores it: numbers and strings as given, anything else (a loss
    object) by its class name."""
    return v if isinstance(v, (str, int, float, bool)) or v is None else type(v).__name__


def number(v) -> float:
    from .._spec._sections import _parse_number

    return float(_parse_number(v))


def original(level: dict, vary: dict, key: str):
    """The value the user passed for ``key`` at ``level`` (a loss object, not its name)."""
    for k, vals in vary.items():
        if _ALIAS.get(k) == key:
            for v in (vals if isinstance(vals, (list, tuple)) else [vals]):
                if _stored(v) == level[key]:
                    return v
    return level[key]


def seeds_to_run(db: str, name: str, levels: list[dict], seeds: int) -> list[tuple[dict, int]]:
    """(level, seed) pairs not yet stored in study ``name``: a rerun resumes, nothing is trained twice."""
    from .._store import Store

    if seeds < 1:
        raise ValueError(f"seeds={seeds}: run at least 1 seed per level (5 is the usual)")
    store = Store(db)
    try:
        info = store.latest_study(name)
        done = set()
        if info is not None:
            if not (info["spec"] or {}).get("watched"):
                raise ValueError(f"study {name!r} in {db} is a spec study; name your model's study another name=")
            done = {(json.dumps(t["level"], sort_keys=True), t["seed"]) for t in store.trials(info["id"])}
    finally:
        store.close()
    return [(lv, s) for lv in levels for s in range(seeds)
            if (json.dumps(json.loads(json.dumps(lv)), sort_keys=True), s) not in done]


def report(db: str, name: str, verbose: bool) -> list:
    """The study's findings (every level), printed as ``scalelab explain`` prints them."""
    from .._explain import explain, render_text
    from .._store import Store

    store = Store(db, readonly=True)
    try:
        findings = explain(store, name)
    finally:
        store.close()
    if verbose:
        print(f"scalelab: study {name} -> {db}")
        print(render_text(findings).rstrip() or "No findings.")
        print(f"  (the levels side by side: scalelab show --db {db} {name})")
    return findings
