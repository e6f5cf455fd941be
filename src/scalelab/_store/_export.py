"""A stored study in tidy form: one row per trial × epoch, one column per swept factor,
the seed, the trial's status and one column per epoch metric. For pandas
(:meth:`Store.to_dataframe`), CSV and Parquet (``scalelab export``)."""

from __future__ import annotations

import csv
import io
import math

from typing import TYPE_CHECKING

from .._format import value_label, value_number as _number
from ._levels import read_levels
from ._schema import METRICS

if TYPE_CHECKING:
    from . import Store


def tidy_rows(store: Store, study: str) -> tuple[list[str], list[dict]]:
    """(columns, rows) of a stored study: study, trial_id, level, each factor, seed, status,
    loss_units, epoch, then every metric in :data:`METRICS` (None where not measured).

    A factor whose values are all numbers is a float column ("1/255" becomes 1/255); other
    factors are text as the report writes them; ``level`` is the whole level's label.
    ``loss_units`` says whether train/val/test loss are in the original or the transformed
    target units (MSE, R² and accuracy are always in the original units).
    """
    levels = read_levels(store, study)
    factors = list(dict.fromkeys(k for lv in levels for k in lv.level))
    numeric = {f: all(_number(lv.level.get(f)) is not None for lv in levels) for f in factors}
    # a registered loss's own metrics (test_ade, …), the report's sample drawings left out
    extra = sorted({k for lv in levels for rec in lv.trials for e in rec.epochs for k in e
                    if k != "epoch" and k not in METRICS and not k.startswith("test_show.")})
    cols = ["study", "trial_id", "level", *factors, "seed", "status", "loss_units", "epoch", *METRICS, *extra]
    rows = []
    for lv in levels:
        cells = {f: _number(lv.level.get(f)) if numeric[f] else value_label(lv.level.get(f))
                 for f in factors}
        for rec in lv.trials:
            t = rec.trial
            units = "transformed" if t["spec"]["target"]["transform"] != "none" and \
                t["spec"]["loss"]["name"] != "crossentropy" else "original"
            for e in rec.epochs:
                rows.append(dict(study=study, trial_id=t["id"], level=lv.label, **cells, seed=t["seed"],
                                 status=t["status"], loss_units=units, epoch=e["epoch"],
                                 **{m: None if not math.isfinite(e[m]) else e[m] for m in METRICS},
                                 **{m: e[m] if m in e and math.isfinite(e[m]) else None for m in extra}))
    return cols, rows


def to_dataframe(store: Store, study: str):
    """The tidy rows as a pandas DataFrame (``pip install 'scalelab[export]'``)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("pandas is needed for a DataFrame: pip install 'scalelab[export]'") from None
    cols, rows = tidy_rows(store, study)
    df = pd.DataFrame(rows, columns=cols)
    df[list(METRICS)] = df[list(METRICS)].astype(float)   # not measured: NaN
    return df


def tidy_csv(store: Store, study: str) -> str:
    cols, rows = tidy_rows(store, study)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
