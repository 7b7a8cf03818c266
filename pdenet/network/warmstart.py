"""``[train] init_from = "run.h5"``: start from the controls of another run (a warm start).

The file's ``/controls`` (``a``, the kernel parameters, ``W``, ``mu``) replace the case's initial
values, entry for entry; every parameter of this network must be there with the same shape
(same mesh, intervals, kernel and head), else a one-line error naming ``train.init_from``, the
file and the parameter. Read in the validation phase, so ``pdenet validate`` checks it too.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import OutputError


def warm_start(net: Any, case: Any) -> None:
    from ..io.result import open_result

    path = case.resolve_path(case["train.init_from"])
    try:
        r = open_result(path)
    except OutputError as exc:
        raise case.error(str(exc), key="train.init_from") from None
    if r.attrs.get("model") != "network":
        raise case.error(f"{path}: not a network run (model {r.attrs.get('model')!r})", key="train.init_from")
    for name, p in net.params.items():
        if name not in r.controls:
            raise case.error(f"{path}: has no /controls/{name} (its kernel or head differs from this case's)",
                             key="train.init_from")
        value = np.asarray(r.controls[name], dtype=float)
        if value.shape != p.shape:
            raise case.error(f"{path}: /controls/{name} has shape {value.shape}, this case needs {p.shape} "
                             "(same mesh, intervals, kernel and head)", key="train.init_from")
        p[...] = value
