"""Data sets kept on the GPU across the groups of a process.

Every stacked group uploads its training, validation and test arrays to its device. On a
CPU that is free (the tensor shares the array's memory); on a GPU a study of many groups
would copy the same data set again for each. Here a device copy is kept for the arrays of
the last few uploads, keyed by the array's memory (address, shape, strides, dtype) and the
target dtype and device; the key's array is held with it, so its memory cannot be reused by
another array while the copy is cached. Nothing writes into these tensors (batches are
gathered from them), so groups can share one.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

KEEP = 12   # device tensors kept (one data set is 6: X and y of train, validation, test)
_cache: OrderedDict = OrderedDict()


def upload(a: np.ndarray, device: torch.device, dtype: torch.dtype | None = None, via_float64: bool = False
           ) -> torch.Tensor:
    """``a`` on ``device``, as ``dtype`` when given (``via_float64``: converted to a float64
    array first): shared with earlier uploads on a GPU."""
    if device.type == "cpu":
        return _convert(a, device, dtype, via_float64)
    key = (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str, str(dtype), via_float64, str(device))
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        return hit[1]
    t = _convert(a, device, dtype, via_float64)
    _cache[key] = (a, t)
    while len(_cache) > KEEP:
        _cache.popitem(last=False)
    return t


def _convert(a: np.ndarray, device: torch.device, dtype: torch.dtype | None, via_float64: bool) -> torch.Tensor:
    if via_float64:
        a = a.astype(np.float64)
    t = torch.as_tensor(a).to(device)
    return t if dtype is None else t.to(dtype)
