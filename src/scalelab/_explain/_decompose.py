"""Where the spread of a validation metric comes from: seeds or splits.

A table ``A`` of S seeds × K splits (one value per run) is read with the two-way
random-effects model without replication

    a_sk = μ + α_s + β_k + ε_sk,   α ~ (0, σ²_seed), β ~ (0, σ²_split), ε ~ (0, σ²_res),

whose ANOVA mean squares have expectations

    MS_seed  = K/(S−1) Σ_s (ā_s· − ā)²            E = σ²_res + K σ²_seed
    MS_split = S/(K−1) Σ_k (ā_·k − ā)²            E = σ²_res + S σ²_split
    MS_res   = Σ_sk (a_sk − ā_s· − ā_·k + ā)² / ((S−1)(K−1))     E = σ²_res

so σ̂²_seed = (MS_seed − MS_res)/K, σ̂²_split = (MS_split − MS_res)/S, σ̂²_res = MS_res
(method of moments, negative estimates set to 0). A seed's effect need not carry from one
split to another (seed 3 on split 1 has little to do with seed 3 on split 2), so its
split-specific part sits in ε: the variance *across seeds at a fixed split* is
σ²_seed + σ²_res (what the user sees rerunning on one split), the variance *across splits
at a fixed seed* beyond that is σ²_split, and the total σ²_seed + σ²_split + σ²_res is
split into those two shares. The variance of the grand mean is
σ²_seed/S + σ²_split/K + σ²_res/(SK) = (MS_seed + MS_split − MS_res)/(SK), with
Satterthwaite's degrees of freedom for its t interval. Folds of one repeat share training
rows, so split effects are not independent and that interval is somewhat optimistic
(Nadeau & Bengio 2003); the report says so.

One std definition everywhere (table, findings, answer, JSON): ``std_seeds`` = √(σ²_seed +
σ²_res), the spread across seeds at a fixed split; ``std_splits`` = √σ²_split, the spread
the split adds; ``std_total`` = √ of their sum, the spread over all runs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def decompose(A) -> dict:
    """The decomposition of an S × K table (rows: seeds, columns: splits); see the module
    docstring. S = 1 (a deterministic estimator) gives seed variance 0 and the splits'
    sample variance; NaN cells are not allowed."""
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or not np.isfinite(A).all():
        raise ValueError("decompose needs a full seeds × splits table of finite values")
    S, K = A.shape
    grand = float(A.mean())
    row, col = A.mean(1), A.mean(0)
    per_split_range = A.max(0) - A.min(0)
    out = dict(n_seeds=S, n_splits=K, mean=grand, min=float(A.min()), max=float(A.max()),
               seed_range_median=float(np.median(per_split_range)), seed_range_max=float(per_split_range.max()))
    if S == 1 or K == 1:
        var_split = float(col.var(ddof=1)) if K > 1 else 0.0
        var_seed = float(row.var(ddof=1)) if S > 1 else 0.0
        n = K if S == 1 else S
        half = stats.t.ppf(0.975, n - 1) * math.sqrt((var_split if S == 1 else var_seed) / n) if n > 1 else 0.0
        out.update(ms_seed=math.nan, ms_split=math.nan, ms_res=math.nan, var_seed_main=var_seed, var_res=0.0,
                   var_seed=var_seed, var_split=var_split, ci95=[grand - half, grand + half], df=n - 1)
    else:
        ms_seed = K * float(((row - grand) ** 2).sum()) / (S - 1)
        ms_split = S * float(((col - grand) ** 2).sum()) / (K - 1)
        resid = A - row[:, None] - col[None, :] + grand
        ms_res = float((resid ** 2).sum()) / ((S - 1) * (K - 1))
        v_seed = max(0.0, (ms_seed - ms_res) / K)
        v_split = max(0.0, (ms_split - ms_res) / S)
        # the moment estimate can fall below what the split means alone show: never narrower than that
        v_mean = max((ms_seed + ms_split - ms_res) / (S * K), float(col.var(ddof=1)) / K)
        # Satterthwaite: df of a linear combination of mean squares
        terms = [(ms_seed, S - 1), (ms_split, K - 1), (-ms_res, (S - 1) * (K - 1))]
        denom = sum(m * m / d for m, d in terms)
        df = (ms_seed + ms_split - ms_res) ** 2 / denom if denom > 0 else K - 1
        df = max(1.0, df)
        half = float(stats.t.ppf(0.975, df)) * math.sqrt(v_mean)
        out.update(ms_seed=ms_seed, ms_split=ms_split, ms_res=ms_res, var_seed_main=v_seed, var_res=ms_res,
                   var_seed=v_seed + ms_res, var_split=v_split, ci95=[grand - half, grand + half], df=df)
    total = out["var_seed"] + out["var_split"]
    out["var_total"] = total
    out["std_seeds"], out["std_splits"] = math.sqrt(out["var_seed"]), math.sqrt(out["var_split"])
    out["std_total"] = math.sqrt(total)
    out["seed_share"] = out["var_seed"] / total if total > 0 else math.nan
    out["split_share"] = out["var_split"] / total if total > 0 else math.nan
    return out
