"""Findings from probe records: mechanisms, with the numbers that show them.

Each rule is a small function ``rule(target, reference) -> list[Finding]`` over
:class:`LevelView` objects (one sweep level, its seeds' probe series and epoch metrics).
The *reference* is the level that trained best (lowest final training loss); rules
contrast a level with it. A rule only says what its numbers show: every figure in a
finding's text is in its ``evidence``; when a probe was not recorded the rule is silent.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ._spec import level_label
from ._store import Store


@dataclass
class Finding:
    id: str                 # stable mechanism name, e.g. "clipped-zero-gradient"
    level: dict             # the sweep level it concerns
    evidence: dict          # the numbers behind the text
    text: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LevelView:
    """One sweep level (or one trial): its seeds' probe series and final metrics."""

    level: dict
    spec: dict
    n_seeds: int
    series: dict = field(default_factory=dict)   # (probe, name) -> {step: np.array over seeds}
    final_train_loss: float = math.nan
    final_test_acc: float = math.nan
    train_loss_by_seed: list = field(default_factory=list)   # per seed, the train loss of each epoch
    diverged_steps: list = field(default_factory=list)       # first non-finite step of each diverged seed
    final: dict = field(default_factory=dict)                # last-epoch metrics: name -> array over seeds

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={level_label(v)}" for k, v in self.level.items()) or "(base)"

    def has(self, probe: str, name: str) -> bool:
        return (probe, name) in self.series

    def steps(self, probe: str, name: str) -> list[int]:
        return sorted(self.series.get((probe, name), {}))

    def at(self, probe: str, name: str, step: int) -> np.ndarray:
        return self.series[(probe, name)][step]

    def mean_at(self, probe: str, name: str, step: int) -> float:
        return float(np.mean(self.at(probe, name, step)))

    def last_step(self, probe: str, name: str) -> int:
        return self.steps(probe, name)[-1]

    def per_seed_median(self, probe: str, name: str, steps: list[int] | None = None) -> float:
        """Median over steps for each seed, then the mean over seeds."""
        steps = steps if steps is not None else self.steps(probe, name)
        if not steps:
            return math.nan
        arr = np.stack([self.at(probe, name, s) for s in steps])      # (steps, seeds)
        return float(np.mean(np.median(arr, axis=0)))


def _view(trials: list[tuple[dict, list[dict], list[tuple]]], level: dict) -> LevelView:
    """A level's view over its finished trials; diverged ones are counted, not averaged in."""
    v = LevelView(level=level, spec=trials[0][0]["spec"], n_seeds=len(trials))
    v.diverged_steps = [t["diverged_step"] for t, _, _ in trials if t["status"] == "diverged"]
    trials = [x for x in trials if x[0]["status"] != "diverged"]
    raw: dict = {}
    for k, (t, eps, probes) in enumerate(trials):
        for step, probe, name, value in probes:
            raw.setdefault((probe, name), {}).setdefault(step, {})[k] = np.nan if value is None else value
    for key, by_step in raw.items():
        v.series[key] = {s: np.array([d.get(k, np.nan) for k in range(len(trials))]) for s, d in by_step.items()}
    v.train_loss_by_seed = [[e["train_loss"] for e in eps] for t, eps, _ in trials if eps and t["status"] == "done"]
    finals = [eps[-1] for t, eps, _ in trials if eps and t["status"] == "done"]
    for k in ("train_loss", "val_loss", "test_loss", "test_r2", "test_corr", "val_r2"):
        vals = np.array([e.get(k, np.nan) for e in finals], dtype=float)
        if len(vals) and np.isfinite(vals).any():
            v.final[k] = vals
    if finals:
        v.final_train_loss = float(np.mean([e["train_loss"] for e in finals]))
        v.final_test_acc = float(np.mean([e["test_acc"] for e in finals]))
    return v


def study_views(store: Store, study: str) -> list[LevelView]:
    """One view per sweep level of the newest stored study of that name."""
    info = store.require_study(study)
    return [_view([(t, store.epochs(t["id"]), store.probes(t["id"])) for t in trials], trials[0]["level"])
            for trials in store.trials_by_level(info["id"]).values()]


def _pct(x: float) -> str:
    if x == 0:
        return "0%"
    if x < 0.001:
        return "<0.1%"
    return f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%"


def _g(x: float) -> str:
    return f"{x:.3g}"


# ----------------------------------------------------------------------------- rules

def rule_zero_gradient(t: LevelView, ref: LevelView) -> list[Finding]:
    """Samples whose loss gradient is exactly zero (for a clipped cross-entropy: the
    true-class probability in a clipped tail); the plateau loss they imply."""
    if not t.has("zero_grad", "share"):
        return []
    steps = t.steps("zero_grad", "share")
    means = [t.mean_at("zero_grad", "share", s) for s in steps]
    if max(means) < 0.25:
        return []
    s0 = t.at("zero_grad", "share", steps[0])
    ev = dict(step0_share=float(np.mean(s0)), step0_share_range=[float(np.min(s0)), float(np.max(s0))],
              last_step=steps[-1], last_share=means[-1], max_share=max(means),
              reference_level=ref.level, reference_max_share=max(ref.mean_at("zero_grad", "share", s)
                                                                  for s in ref.steps("zero_grad", "share")))
    all_step = next((s for s, m in zip(steps, means) if m >= 0.999), None)
    ev["first_step_all_zero"] = all_step
    clip = float(t.spec["loss"]["clip"]) if not t.spec["loss"]["from_logits"] else 0.0
    fid = "zero-gradient"
    text = (f"at {t.label}, {_pct(ev['step0_share'])} of training samples (seeds: {_pct(ev['step0_share_range'][0])}–"
            f"{_pct(ev['step0_share_range'][1])}) had an exactly zero loss gradient at step {steps[0]}")
    if clip > 0 and t.has("logits", "p_true_below_clip"):
        low0 = t.mean_at("logits", "p_true_below_clip", steps[0])
        high0 = t.mean_at("logits", "p_true_above_1-clip", steps[0])
        low_last = t.mean_at("logits", "p_true_below_clip", steps[-1])
        high_last = t.mean_at("logits", "p_true_above_1-clip", steps[-1])
        ev.update(clip=clip, step0_below_clip=low0, step0_above_1_minus_clip=high0, last_below_clip=low_last,
                  last_above_1_minus_clip=high_last)
        if low0 + high0 >= 0.9 * ev["step0_share"]:
            fid = "clipped-zero-gradient"
            text += (f": their true-class probability was below the clip {clip:g} ({_pct(low0)}) or above 1 − clip "
                     f"({_pct(high0)}), where the clipped cross-entropy has no gradient")
        plateau = -math.log(clip) * low_last
        ev.update(plateau_loss_predicted=plateau, final_train_loss=t.final_train_loss)
        if math.isfinite(t.final_train_loss) and abs(plateau - t.final_train_loss) <= 0.1 * t.final_train_loss:
            text += (f"; at step {steps[-1]} {_pct(low_last)} sit below the clip, and −log({clip:g}) × {low_last:.3f} = "
                     f"{plateau:.2f} ≈ the final train loss {t.final_train_loss:.2f}")
    if all_step is not None:
        text += f"; from step {all_step} on, every probed sample was in that region"
    if t.has("gradients", "total.norm"):
        gsteps = t.steps("gradients", "total.norm")
        zero_from = next((s for s in gsteps if all(np.all(t.at("gradients", "total.norm", u) == 0)
                                                    for u in gsteps if u >= s)), None)
        ev["batch_gradient_exactly_zero_from_step"] = zero_from
        if zero_from is not None:
            text += f"; the batch gradient was exactly 0.0 at every probed step from {zero_from} on"
            # stopped for good: a seed whose last epochs have the very same training loss
            frozen = sum(1 for ls in t.train_loss_by_seed if len(ls) >= 2 and abs(ls[-1] - ls[-2]) <= 1e-6 * abs(ls[-1]))
            ev["seeds_with_frozen_weights"] = frozen
            if frozen:
                text += (f"; {frozen} of {len(t.train_loss_by_seed)} seeds stopped learning (the same training loss in "
                         f"their last two epochs)")
    text += f". At {ref.label}: at most {_pct(ev['reference_max_share'])}."
    return [Finding(fid, t.level, ev, text)]


def rule_class_collapse(t: LevelView, ref: LevelView) -> list[Finding]:
    """Predictions collapsed onto one or two classes at the end of training."""
    if not t.has("logits", "classes_for_95pct"):
        return []
    k = sum(1 for p, n in t.series if p == "logits" and n.startswith("pred_share."))
    if k < 5:
        return []
    last = t.last_step("logits", "classes_for_95pct")
    per_seed = t.at("logits", "classes_for_95pct", last)
    collapsed = int(np.sum(per_seed <= 2))
    if collapsed * 2 <= len(per_seed):
        return []
    top = t.at("logits", "top_class_share", last)
    ref_last = ref.last_step("logits", "classes_for_95pct")
    ev = dict(step=last, seeds_collapsed=collapsed, n_seeds=len(per_seed),
              classes_for_95pct=[int(x) for x in per_seed], top_class_share=[float(x) for x in top],
              n_classes=k, test_accuracy=t.final_test_acc,
              reference_level=ref.level, reference_classes_for_95pct=ref.mean_at("logits", "classes_for_95pct", ref_last))
    text = (f"at {t.label}, predictions collapsed onto one or two of {k} classes in {collapsed} of {len(per_seed)} seeds "
            f"(step {last}: the top class took {_pct(float(np.mean(top)))} of predictions on average; classes covering "
            f"95%: {', '.join(str(int(x)) for x in per_seed)}); test accuracy {t.final_test_acc:.3f}. "
            f"At {ref.label}: {ev['reference_classes_for_95pct']:.1f} classes cover 95%.")
    return [Finding("class-collapse", t.level, ev, text)]


def _dead(v: LevelView) -> dict[int, float]:
    """Per hidden layer, the dead-unit fraction at the last probed step (mean over seeds)."""
    out = {}
    for p, n in v.series:
        if p == "activations" and n.endswith(".dead_frac"):
            out[int(n[3:-len(".dead_frac")])] = v.mean_at(p, n, v.last_step(p, n))
    return out


def rule_dead_relu(t: LevelView, ref: LevelView, pathological: bool = False) -> list[Finding]:
    """Dead units (zero activation on every probe sample) compared with the reference: an
    elevated fraction is reported; for a level with another pathology, that dead units are
    *not* elevated is reported too (it rules a common guess out)."""
    dead, ref_dead = _dead(t), _dead(ref)
    if not dead or t is ref:
        return []
    out = []
    for i, d in sorted(dead.items()):
        r = ref_dead.get(i, math.nan)
        elevated = d >= 2 * r + 0.05
        if not elevated and not pathological:
            continue
        ev = dict(layer=i, dead_fraction=d, reference_level=ref.level, reference_dead_fraction=r, elevated=elevated,
                  step=t.last_step("activations", f"act{i}.dead_frac"))
        if elevated:
            text = (f"at {t.label}, {_pct(d)} of hidden layer {i}'s units are dead (zero on every probe sample) at step "
                    f"{ev['step']}, against {_pct(r)} at {ref.label}.")
        else:
            text = (f"at {t.label}, dead units are not the cause: {_pct(d)} of hidden layer {i}'s units are dead at step "
                    f"{ev['step']}, against {_pct(r)} at {ref.label}.")
        out.append(Finding("dead-relu", t.level, ev, text))
    return out


def rule_first_layer_step(t: LevelView, ref: LevelView) -> list[Finding]:
    """How far one update moves the first layer's pre-activations (its own weights' step),
    against the reference: ≥ 2× smaller is a slower start."""
    key = ("preact_step", "pre0.rms_change")
    if not t.has(*key) or not ref.has(*key) or t is ref:
        return []
    a, b = t.per_seed_median(*key), ref.per_seed_median(*key)
    if not (a > 0 and b > 0) or b / a < 2:
        return []
    ev = dict(rms_change_median=a, reference_rms_change_median=b, ratio=b / a, reference_level=ref.level,
              steps=len(t.steps(*key)))
    text = (f"at {t.label}, one update moved the first layer's pre-activations by {_g(a)} (RMS, median over "
            f"{ev['steps']} probed steps), {b / a:.1f}× less than at {ref.label} ({_g(b)})")
    if t.has("update", "dense0.W.rms") and ref.has("update", "dense0.W.rms"):
        ua, ub = t.per_seed_median("update", "dense0.W.rms"), ref.per_seed_median("update", "dense0.W.rms")
        ev.update(weight_step_rms=ua, reference_weight_step_rms=ub)
        similar = max(ua, ub) <= 1.5 * min(ua, ub)
        text += (f", while the first-layer weight step was about the same size ({_g(ua)} vs {_g(ub)} RMS)" if similar
                 else f"; the first-layer weight step was {_g(ua)} vs {_g(ub)} RMS")
    sa, sb = _input_factor(t.spec), _input_factor(ref.spec)
    if sa and sb and sb / sa >= 1.5:
        ev["input_scale_ratio"] = sb / sa
        text += f": its inputs are {sb / sa:.2f}× smaller, so the same weight step changes the layer's output less"
    return [Finding("small-first-layer-step", t.level, ev, text + ".")]


def _input_factor(spec: dict) -> float | None:
    inp = spec["input"]
    if inp["transform"] == "scale":
        return float(inp["scale"])
    return 1.0 if inp["transform"] == "none" else None


def rule_predicts_the_mean(t: LevelView, ref: LevelView) -> list[Finding]:
    """Regression: predictions that explain no target variance on the test set (R² ≤ 0.1 and
    correlation < 0.3): the model is no better than predicting each output's mean."""
    if "test_r2" not in t.final:
        return []
    r2, corr = float(np.nanmedian(t.final["test_r2"])), float(np.nanmedian(t.final.get("test_corr", [np.nan])))
    if not (r2 <= 0.1 and (not math.isfinite(corr) or corr < 0.3)):
        return []
    ev = dict(test_r2_median=r2, test_corr_median=corr, test_r2=[float(x) for x in t.final["test_r2"]],
              reference_level=ref.level)
    text = (f"at {t.label}, the predictions explain none of the target variance: test R² {r2:.3g} (median over "
            f"{len(t.final['test_r2'])} seeds; 0 = predicting each output's mean) and correlation {corr:.2f} with the "
            f"targets")
    if "test_r2" in ref.final and ref is not t:
        ev["reference_test_r2_median"] = float(np.nanmedian(ref.final["test_r2"]))
        text += f". At {ref.label}: R² {ev['reference_test_r2_median']:.3g}"
    return [Finding("predicts-the-mean", t.level, ev, text + ".")]


def rule_batchnorm_train_eval_gap(t: LevelView, ref: LevelView) -> list[Finding]:
    """Batch norm trains on batch statistics and predicts with running averages: a validation
    loss far above the training loss (same units) at the end is that gap."""
    if not t.spec.get("model", {}).get("batchnorm") or "val_loss" not in t.final:
        return []
    tr, va = float(np.median(t.final["train_loss"])), float(np.median(t.final["val_loss"]))
    if not (tr > 0 and va / tr >= 10):
        return []
    ev = dict(train_loss_median=tr, val_loss_median=va, ratio=va / tr)
    return [Finding("batchnorm-train-eval-gap", t.level, ev,
                    f"at {t.label}, the validation loss ({_g(va)}, running-average statistics) is {va / tr:.0f}× the "
                    f"training loss ({_g(tr)}, batch statistics) in the same units: what batch norm learned on "
                    f"batches does not carry over to evaluation.")]


def rule_curvature(t: LevelView, ref: LevelView) -> list[Finding]:
    """The top Hessian eigenvalue (power iteration) at the first and last probed steps; a loss
    surface that is exactly flat, or sharper than plain SGD's stability limit 2/lr."""
    key = ("hessian", "top_eigenvalue")
    if not t.has(*key):
        return []
    steps = t.steps(*key)
    first, last = (float(np.median(t.at(*key, s))) for s in (steps[0], steps[-1]))
    ev = dict(first_step=steps[0], last_step=steps[-1], top_eigenvalue_first=first, top_eigenvalue_last=last)
    if ref.has(*key) and ref is not t:
        rs = ref.steps(*key)
        ev.update(reference_level=ref.level, reference_top_eigenvalue_first=float(np.median(ref.at(*key, rs[0]))))
    allv = np.concatenate([t.at(*key, s) for s in steps])
    opt = t.spec["optim"]
    if np.all(allv == 0):
        return [Finding("flat-loss-surface", t.level, ev,
                        f"at {t.label}, the loss surface is exactly flat where it was probed: the top Hessian eigenvalue is "
                        f"0.0 at every probed step ({steps[0]}–{steps[-1]}) in every seed, so neither gradient nor curvature "
                        f"moves the weights.")]
    text = (f"at {t.label}, the top Hessian eigenvalue (median over seeds) is {_g(first)} at step {steps[0]} and "
            f"{_g(last)} at step {steps[-1]}")
    if "reference_top_eigenvalue_first" in ev:
        text += f" (at {ref.label}: {_g(ev['reference_top_eigenvalue_first'])} at its first probed step)"
    fid = "curvature"
    if opt["name"] in ("sgd", "momentum"):
        limit = 2.0 / (opt["lr"] * opt["lr_mult"][0])
        ev["sgd_stability_limit"] = limit
        if max(first, last) > limit:
            fid = "sharp-curvature"
            text += f"; above plain SGD's stability limit 2/lr = {_g(limit)}, where steps overshoot"
    return [Finding(fid, t.level, ev, text + ".")]


PATHOLOGIES = ("diverged", "predicts-the-mean", "batchnorm-train-eval-gap", "flat-loss-surface", "sharp-curvature", "zero-gradient", "clipped-zero-gradient", "class-collapse", "small-first-layer-step")


def rule_no_pathology(t: LevelView, found: list[Finding]) -> list[Finding]:
    """A level where no rule fired, with the numbers that were checked."""
    if any(f.id in PATHOLOGIES or (f.id == "dead-relu" and f.evidence["elevated"]) for f in found):
        return []
    ev, parts = {}, []
    if t.has("zero_grad", "share"):
        ev["max_zero_grad_share"] = max(t.mean_at("zero_grad", "share", s) for s in t.steps("zero_grad", "share"))
        parts.append(f"zero-gradient share at most {_pct(ev['max_zero_grad_share'])}")
    if t.has("logits", "classes_for_95pct"):
        ev["classes_for_95pct"] = t.mean_at("logits", "classes_for_95pct", t.last_step("logits", "classes_for_95pct"))
        parts.append(f"{ev['classes_for_95pct']:.1f} classes cover 95% of predictions")
    dead = _dead(t)
    if dead:
        ev["dead_fraction"] = dead
        parts.append("dead units " + ", ".join(f"{_pct(d)} (layer {i})" for i, d in dead.items()))
    if not parts:
        return []
    ev["final_train_loss"] = t.final_train_loss
    text = f"at {t.label}, no pathology found: {'; '.join(parts)}; final train loss {t.final_train_loss:.3g}."
    return [Finding("no-pathology", t.level, ev, text)]


def rule_diverged(t: LevelView) -> list[Finding]:
    """Seeds whose loss became NaN or inf (their probes are left out of every other rule)."""
    if not t.diverged_steps:
        return []
    steps = sorted(t.diverged_steps)
    ev = dict(seeds_diverged=len(steps), n_seeds=t.n_seeds, first_nonfinite_steps=steps)
    text = (f"at {t.label}, {len(steps)} of {t.n_seeds} seeds diverged (loss not finite from step "
            f"{', '.join(map(str, steps))}).")
    return [Finding("diverged", t.level, ev, text)]


def _reference(views: list[LevelView]) -> LevelView:
    """The level that did best: highest median test R² for regression (training losses in
    different target units do not compare), else lowest final training loss."""
    ok = [v for v in views if math.isfinite(v.final_train_loss)] or views
    if all("test_r2" in v.final for v in ok):
        return max(ok, key=lambda v: float(np.nanmedian(v.final["test_r2"])))
    return min(ok, key=lambda v: v.final_train_loss if math.isfinite(v.final_train_loss) else math.inf)


def explain_views(views: list[LevelView], targets: list[LevelView] | None = None) -> list[Finding]:
    """Findings for ``targets`` (default: every level), contrasted with the best level."""
    ref = _reference(views)
    out = []
    for t in targets or views:
        found = rule_diverged(t)
        if len(t.diverged_steps) < t.n_seeds:  # something finished to look at
            found += rule_zero_gradient(t, ref) + rule_class_collapse(t, ref) + rule_first_layer_step(t, ref)
            found += rule_dead_relu(t, ref, pathological=bool(found))
            found += rule_curvature(t, ref)
            found += rule_predicts_the_mean(t, ref) + rule_batchnorm_train_eval_gap(t, ref)
            found += rule_no_pathology(t, found)
        out += found
    return out


def explain(store: Store, study: str, trial_id: int | None = None) -> list[Finding]:
    """Findings of a stored study, or of one of its trials (contrasted with the study's best level)."""
    views = study_views(store, study)
    if trial_id is None:
        return explain_views(views)
    info = store.require_study(study)
    t = next((t for t in store.trials(info["id"]) if t["id"] == trial_id), None)
    if t is None:
        raise KeyError(f"trial {trial_id} is not in study {study!r}; scalelab show {study} --format json lists "
                       f"its levels, and the store's trials table their ids")
    one = _view([(t, store.epochs(t["id"]), store.probes(t["id"]))], {**t["level"], "seed": t["seed"]})
    return explain_views(views, [one])


def render_text(findings: list[Finding]) -> str:
    if not findings:
        return ("No findings. Most rules read probe records: run with --probes standard (or set [probes] preset) "
                "to record them.\n")
    return "".join(f"- [{f.id}] {f.text}\n" for f in findings)
