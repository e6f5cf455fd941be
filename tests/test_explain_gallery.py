"""The labelled gallery (tests/gallery_cases.py) end to end: each planted failure trains,
``explain`` ranks its planted mechanism first and blames none of the ruled-out ids;
each healthy-but-unusual control gets no cause; every finding quotes a number from its
evidence. The score table is printed (pytest -s, or in the failure message)."""

from __future__ import annotations

import math
import re
import time

import pytest

from gallery_cases import CASES
from scalelab import Store, run_study
from scalelab._explain import CAUSE, explain_views, study_views

PLANTED, REFERENCE = {"arm": "planted"}, {"arm": "reference"}


@pytest.fixture(scope="session")
def gallery(tmp_path_factory):
    """Every case run into one store, explained: name -> (findings at the planted arm,
    findings at the reference arm, seconds)."""
    store = Store(tmp_path_factory.mktemp("gallery") / "gallery.db")
    out = {}
    for case in CASES:
        t0 = time.perf_counter()
        run_study(case.spec(), store)
        fs = explain_views(study_views(store, case.spec()["name"]))
        out[case.name] = ([f for f in fs if f.level == PLANTED], [f for f in fs if f.level == REFERENCE],
                          time.perf_counter() - t0)
    store.close()
    return out


def verdict(case, planted) -> tuple[str, list[str], bool]:
    """(top cause id or "-", ruled-out ids blamed, passed)."""
    causes = [f.id for f in planted if f.role == CAUSE]
    top = causes[0] if causes else "-"
    blamed = [i for i in case.ruled_out if i in causes]
    ok = (top == case.expect if case.expect else not causes) and not blamed
    return top, blamed, ok


def score_table(gallery) -> str:
    rows = [("case", "kind", "expected", "top cause", "blamed", "ok", "s")]
    for case in CASES:
        planted, _, secs = gallery[case.name]
        top, blamed, ok = verdict(case, planted)
        rows.append((case.name, "broken" if case.expect else "control", case.expect or "(no cause)", top,
                     ",".join(blamed) or "-", "yes" if ok else "NO", f"{secs:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    broken = [c for c in CASES if c.expect]
    controls = [c for c in CASES if not c.expect]
    score = lambda cs: sum(verdict(c, gallery[c.name][0])[2] for c in cs)   # noqa: E731
    lines.append(f"broken: {score(broken)}/{len(broken)} planted mechanism ranked first; "
                 f"controls: {score(controls)}/{len(controls)} without a cause")
    return "\n".join(lines)


def test_gallery_covers_every_mechanism_and_three_controls():
    from scalelab._explain import rules

    broken = [c for c in CASES if c.expect]
    assert len(broken) >= 12 and len(CASES) - len(broken) >= 3
    new = {"large-logits", "saturated-units", "vanishing-error-signal", "loss-divergence", "unscaled-targets",
           "ill-conditioning", "class-collapse", "clipped-zero-gradient", "dead-relu", "diverged"}
    assert new <= {c.expect for c in broken}
    ids = {i for r in rules() for i in r.ids}
    assert all(c.expect in ids for c in broken) and all(i in ids for c in CASES for i in c.ruled_out)


def test_gallery_score_table(gallery, capsys):
    table = score_table(gallery)
    with capsys.disabled():
        print("\n" + table)
    assert all(verdict(c, gallery[c.name][0])[2] for c in CASES), table


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(gallery, case):
    planted, reference, _ = gallery[case.name]
    top, blamed, ok = verdict(case, planted)
    found = [(f.id, f.role) for f in planted]
    if case.expect:
        assert top == case.expect, found
    else:
        assert top == "-", found                  # a control: no cause at all
    assert not blamed, found
    # the reference arm of a broken case trains: nothing blamed there either (in a control the
    # unusual arm may train better than the usual one, which is then fairly called slower)
    assert not case.expect or not [f.id for f in reference if f.role == CAUSE], [(f.id, f.role, f.text) for f in reference]


NUMBER = re.compile(r"[-−]?\d+(?:\.\d+)?(?:e[-+]?\d+)?%?")


def numbers(evidence) -> list[float]:
    """Every finite number in a finding's evidence (nested dicts and lists too)."""
    if isinstance(evidence, dict):
        return [x for v in evidence.values() for x in numbers(v)]
    if isinstance(evidence, (list, tuple)):
        return [x for v in evidence for x in numbers(v)]
    if isinstance(evidence, (int, float)) and not isinstance(evidence, bool) and math.isfinite(evidence):
        return [float(evidence)]
    return []


def quotes(text: str, ev: list[float]) -> bool:
    """True when some number in the text equals one of ``ev`` as the text shows it (to its
    printed precision, or as a percentage)."""
    for tok in NUMBER.findall(text):
        pct = tok.endswith("%")
        x = float(tok.rstrip("%").replace("−", "-")) / (100 if pct else 1)
        digits = len(re.sub(r"e.*|[-−.%]", "", tok).lstrip("0")) or 1
        tol = 0.5 * 10 ** (math.floor(math.log10(abs(x))) - digits + 1) if x else 1e-3
        if any(abs(e - x) <= max(tol, 1e-12) * 1.01 for e in ev):
            return True
    return False


WHEN = {"step", "first_step", "last_step", "loss_step"}   # when it fired, not what fired it


def test_every_finding_quotes_the_number_that_fired_it(gallery):
    """Each finding names the evidence entry that fired it (evidence["fired"]), a quantity,
    not a step (every text has "at step s"), and its text quotes that very value."""
    missing = []
    for name, (planted, reference, _) in gallery.items():
        for f in planted + reference:
            if f.id == "no-pathology":
                continue
            k = f.evidence.get("fired")
            value = f.evidence.get(k) if k is not None else None
            if k in WHEN or not numbers(value) or not quotes(f.text, numbers(value)[:1]):
                missing.append((name, f.id, k, value, f.text))
    assert not missing, missing


def test_quoting_checks_the_fired_value_not_any_number():
    """The check against a text that quotes the step and other evidence but not the value that fired."""
    text = "at l=1, 75% of units are dead at step 30, against 2% at l=0."
    assert quotes(text, [0.75]) and quotes(text, [30]) and not quotes(text, [0.3]) and not quotes(text, [0.074])
