#!/usr/bin/env python3
"""The double-precision arithmetic rate a numba loop reaches on this core (GFlop/s): the
reference for "fraction of the measured numba peak" of the grid kernels (docs/benchmarks.md).

A cache-resident array of 4096 values is updated in place by 8 independent multiply-adds per
element and sweep (y <- y*a + b, 16 flops), the loop over elements vectorised by LLVM; the best
of ``repeat`` timings of 2000 sweeps is reported. Run with NUMBA_NUM_THREADS=1.
"""
import sys
import time

import numba
import numpy as np


@numba.njit(cache=True)
def _sweeps(y, a, b, n):
    for _ in range(n):
        for i in range(y.shape[0]):
            v = y[i]
            v = v * a + b
            v = v * a + b
            v = v * a + b
            v = v * a + b
            v = v * a + b
            v = v * a + b
            v = v * a + b
            v = v * a + b
            y[i] = v
    return y


def main(repeat=7):
    y = np.random.default_rng(0).random(4096)
    a, b, n = 0.999999, 1e-7, 2000
    _sweeps(y, a, b, 1)
    best = min(_timed(y, a, b, n) for _ in range(repeat))
    flops = 16.0 * y.size * n
    print(f"numba multiply-add loop: {flops / best / 1e9:.1f} GFlop/s (best of {repeat})")


def _timed(y, a, b, n):
    t = time.perf_counter()
    _sweeps(y, a, b, n)
    return time.perf_counter() - t


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:]))
