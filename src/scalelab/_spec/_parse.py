"""From a plain dict (parsed TOML, ``--set`` overrides) to a validated study spec, with
one-line errors that name the key path; grid and arm keys checked against the spec."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._suggest import did_you_mean
from ._sections import STUDY_ONLY, SpecError, StudySpec


def _elsewhere(leaf: str, path: str) -> str:
    """" did you mean 'train.epochs'?" when the key exists, spelt so, in another place of the spec."""
    places = []
    if leaf in StudySpec.model_fields:
        places.append(leaf)
    for section, f in StudySpec.model_fields.items():
        cls = next((a for a in getattr(f.annotation, "__args__", ()) if hasattr(a, "model_fields")), f.annotation)
        if leaf in getattr(cls, "model_fields", {}):
            places.append(f"{section}.{leaf}")
    places = [p for p in places if p != path]
    return f" did you mean {' or '.join(repr(p) for p in places)}?" if places else ""


def _allowed_keys(loc: tuple) -> list[str]:
    cls: Any = StudySpec
    for part in loc[:-1]:
        f = getattr(cls, "model_fields", {}).get(part)
        if f is None:
            return []
        cls = f.annotation
        # an optional section (X | None, e.g. cv, trajectory): its model's keys
        cls = next((a for a in getattr(cls, "__args__", ()) if hasattr(a, "model_fields")), cls)
    return list(getattr(cls, "model_fields", {}))


_UNION_TAGS = ("function-", "literal[", "list[", "int", "float", "str", "bool", "tuple[", "constrained")


def _key_path(err: dict) -> tuple:
    """An error's location without pydantic's union-branch tags (list[int], constrained-int, ...)."""
    return tuple(str(p) for p in err["loc"] if not str(p).startswith(_UNION_TAGS))


def _one_line(e: ValidationError, source: str) -> str:
    errs = e.errors()
    # a union (seeds: a count or a list) reports one error per branch: the branch whose type
    # matched says what is wrong ("less than or equal to 1000000"), not "must be a valid list"
    same = [x for x in errs if _key_path(x) == _key_path(errs[0])]
    err = next((x for x in same if not x["type"].endswith("_type")), errs[0])
    loc = _key_path(err)
    path = ".".join(loc) or "(top level)"
    where = f"{source}: " if source else ""
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(tuple(p for p in err["loc"]))
        hint = did_you_mean(loc[-1], allowed) or _elsewhere(loc[-1], path)
        return f"{where}unknown key '{path}';{hint} allowed here: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"{where}missing key '{path}'"
    msg = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    got = err.get("input")
    if isinstance(got, float) and got != got:   # nan fails every comparison: "greater than 0" misleads
        msg = "is not a number (nan); give a finite number"
    return f"{where}{path} = {got!r}: {msg}"


def parse_spec(raw: dict, source: str = "") -> StudySpec:
    """Validate a plain dict (e.g. parsed TOML) into a :class:`StudySpec`."""
    raw = _flatten_arms(raw)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_one_line(e, source)) from None
    _check_grid(spec, source)
    return spec




_SECTIONS = ("data", "input", "target", "model", "loss", "optim", "train", "probes")


def _flatten_arms(raw: dict) -> dict:
    """An arm's unquoted dotted key (``optim.lr = 0.1`` under ``[arms.A]``) reaches us as a
    nested table; it means the dotted key "optim.lr", so it is flattened to it."""
    arms = raw.get("arms") if isinstance(raw, dict) else None
    if not isinstance(arms, dict) or not any(isinstance(o, dict) and any(isinstance(v, dict) and k in _SECTIONS
                                                                          for k, v in o.items()) for o in arms.values()):
        return raw

    def flat(prefix: str, v) -> list:
        if isinstance(v, dict) and v:
            return [kv for k, x in v.items() for kv in flat(f"{prefix}.{k}", x)]
        return [(prefix, v)]

    out = {}
    for name, o in arms.items():
        if not isinstance(o, dict):
            out[name] = o
            continue
        out[name] = {}
        for k, v in o.items():
            out[name].update(flat(k, v) if isinstance(v, dict) and k in _SECTIONS else [(k, v)])
    return {**raw, "arms": out}


def _set_path(d: dict, path: str, value) -> None:
    parts = path.split(".")
    if not all(parts):
        raise SpecError(f"'{path}' is not a key path; write section.key, e.g. optim.lr")
    for i, p in enumerate(parts[:-1]):
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise SpecError(f"'{path}': '{'.'.join(parts[:i + 1])}' is a value, not a section; "
                            f"set '{'.'.join(parts[:i + 1])}' itself")
    d[parts[-1]] = value


def _get_path(d: dict, path: str):
    for p in path.split("."):
        d = d[p]
    return d


def _check_key(base: dict, key: str, where: str, what: str) -> None:
    if key in ("name", "seeds", "profile", "question", *STUDY_ONLY):
        raise SpecError(f"{where}{what} '{key}' cannot vary; vary a key inside a section, e.g. 'input.scale'")
    try:
        _get_path(base, key)
    except (KeyError, TypeError):
        raise SpecError(f"{where}{what} '{key}' is not a spec key;{did_you_mean(key, _dotted_keys(base))} use a "
                        f"dotted path such as 'input.scale' or 'optim.lr'") from None


def _dotted_keys(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += _dotted_keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [f"{prefix}{k}"]
    return out


def level_keys(grid: dict, arms: dict) -> set[str]:
    """The "factor=value" names a description can take (``arm=NAME`` for an arm)."""
    from .._format import value_label

    return {f"{k}={value_label(v)}" for k, vs in grid.items() for v in vs} | {f"arm={a}" for a in arms}


def prune_descriptions(d: dict) -> None:
    """Drop the descriptions of levels a ``--set grid=…`` or ``arms=…`` override removed."""
    grid, arms = d.get("grid") or {}, d.get("arms") or {}
    if not (isinstance(grid, dict) and all(isinstance(v, list) for v in grid.values()) and isinstance(arms, dict)):
        return   # a malformed grid or arms: parse_spec rejects it with one line
    known = {k.replace(" ", "") for k in level_keys(grid, arms)}
    if isinstance(d.get("descriptions"), dict):
        d["descriptions"] = {k: v for k, v in d["descriptions"].items() if k.replace(" ", "") in known}


def _check_descriptions(spec: StudySpec, where: str) -> None:
    """Each description names a level value the study has: "factor=value" (arm=NAME for an arm)."""
    known = level_keys(spec.grid, spec.arms)
    for key in spec.descriptions:
        if key.replace(" ", "") not in {k.replace(" ", "") for k in known}:
            raise SpecError(f"{where}descriptions.'{key}' names no level of this study;"
                            f"{did_you_mean(key, sorted(known)) or ' levels: ' + ', '.join(sorted(known))}"
                            f" write FACTOR=VALUE as in the grid, or arm=NAME")


def _check_grid(spec: StudySpec, source: str) -> None:
    where = f"{source}: " if source else ""
    base = spec.model_dump(exclude=STUDY_ONLY)
    for key, values in spec.grid.items():
        _check_key(base, key, where, "grid key")
        if not values:
            raise SpecError(f"{where}grid.{key} is empty; give at least one value")
        for v in values:
            trial = copy.deepcopy(base)
            _set_path(trial, key, v)
            try:
                StudySpec.model_validate(trial)
            except ValidationError as e:
                raise SpecError(f"{where}grid.{key} value {v!r}: " + _one_line(e, "").split(": ", 1)[-1]) from None
    for arm, overrides in spec.arms.items():
        if not arm.strip():   # any characters, but something to show
            raise SpecError(f"{where}arms.{arm!r}: an arm needs a name that is not blank")
        for key, v in overrides.items():
            if isinstance(v, dict) and key.split(".")[0] not in base:
                # TOML read [arms.B.x] (or a bare B.x) as table B holding table x: the name was split at the dot
                raise SpecError(f"{where}arms.{arm}.{key}: TOML split the arm name '{arm}.{key}' at the dot; quote it: "
                                f'[arms."{arm}.{key}"]')
        trial = copy.deepcopy(base)
        for key, v in overrides.items():
            _check_key(base, key, where, f"arms.{arm}: key")
            if key in spec.grid:
                raise SpecError(f"{where}arms.{arm}: '{key}' is also swept in grid; set it in one place")
            _set_path(trial, key, v)
        try:
            StudySpec.model_validate(trial)
        except ValidationError as e:
            raise SpecError(f"{where}arms.{arm}: " + _one_line(e, "")) from None
    _check_descriptions(spec, where)



def load_spec(obj: "str | Path | dict | StudySpec") -> StudySpec:
    """A spec from a TOML path, a dict or a StudySpec."""
    if isinstance(obj, StudySpec):
        _check_grid(obj, "")
        return obj
    if isinstance(obj, dict):
        return parse_spec(obj)
    path = Path(obj)
    if not path.exists():
        raise SpecError(f"spec file {path} does not exist")
    if path.is_dir():
        raise SpecError(f"{path} is a folder; give the spec's .toml file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e})") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text (offset {e.start}); save the spec as UTF-8") from None
    return parse_spec(raw, source=str(path))
