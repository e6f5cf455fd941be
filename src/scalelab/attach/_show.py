"""What ``scalelab show`` prints of a watched run: the user's own model, loss, optimizer,
batch size and epochs as the run stored them (``env["model"]``), and its "not probed" lines."""

from __future__ import annotations

from ._model import ModelDesc


def watched_lines(store, study: str) -> list[str]:
    """One block per distinct model among the study's watched trials (empty for a built-in study)."""
    info = store.require_study(study)
    blocks: dict[str, list[str]] = {}
    for t in store.trials(info["id"]):
        env = t.get("env") or {}
        if not env.get("watched") or not env.get("model"):
            continue
        lines = ModelDesc.from_dict(env["model"]).lines()
        key = "\n".join(lines)
        blocks.setdefault(key, [f"watched run(s) of your {env['watched']} script, seed(s):"] + lines +
                          [f"not probed: {s}" for s in env.get("skipped_layers") or []])
        blocks[key][0] += f" {t['seed']}"
    return [line for block in blocks.values() for line in block]
