"""Trajectory analysis of long SGD runs (thesis Fig. 6.3): spectra and autocorrelations of the
weight increments, against white noise and Brownian motion.

For SGD near a minimum the thesis looks at the per-weight increments d_k = theta_{k+1} - theta_k:
if SGD were Brownian motion the increments would be white noise (flat power spectrum,
autocorrelation zero at every lag >= 1); a peak in the spectrum or an oscillating
autocorrelation is the evidence of limit cycles.

* :func:`power_spectrum` -- periodogram |FFT|^2 / n of the mean-removed increments per weight
  (frequencies in cycles per iteration), averaged over weights if asked.
* :func:`autocorrelation` -- sample autocorrelation per lag (FFT, biased estimator) and the 95 %
  band +-1.96/sqrt(n) inside which white noise stays at 95 % of lags.
* :func:`whiteness` -- per series (NaN for a constant one), the fraction of lags 1..L outside the band (about 0.05 for white noise) and
  the Ljung-Box statistic Q = n (n + 2) sum rho_k^2 / (n - k) with its chi^2_L p-value.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["increments", "power_spectrum", "autocorrelation", "whiteness"]


def increments(theta) -> np.ndarray:
    """(n - 1, P) increments of a trajectory (n, P) (a 1-D trajectory is one weight)."""
    th = np.asarray(theta, float)
    th = th[:, None] if th.ndim == 1 else th
    return np.diff(th, axis=0)


def power_spectrum(x, average=True):
    """(frequencies (n//2 + 1,), periodogram) of the mean-removed series x (n, P) along axis 0."""
    x = np.asarray(x, float)
    x = x[:, None] if x.ndim == 1 else x
    n = x.shape[0]
    X = np.fft.rfft(x - x.mean(axis=0), axis=0)
    p = np.abs(X) ** 2 / n
    return np.fft.rfftfreq(n), (p.mean(axis=1) if average else p)


def autocorrelation(x, lags: int):
    """(rho (lags + 1, P), band): rho_k = sum_t y_t y_{t+k} / sum y_t^2 for mean-removed y."""
    x = np.asarray(x, float)
    x = x[:, None] if x.ndim == 1 else x
    n = x.shape[0]
    y = x - x.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    F = np.fft.rfft(y, size, axis=0)
    acov = np.fft.irfft(np.abs(F) ** 2, size, axis=0)[:lags + 1]
    with np.errstate(invalid="ignore", divide="ignore"):       # a constant series: NaN
        rho = np.where(acov[0] > 0, acov / np.where(acov[0] > 0, acov[0], 1.0), np.nan)
    return rho, 1.96 / np.sqrt(n)


def whiteness(x, lags: int):
    """Per column: (fraction of lags 1..lags outside the 95 % band, Ljung-Box p-value)."""
    x = np.asarray(x, float)
    x = x[:, None] if x.ndim == 1 else x
    n = x.shape[0]
    rho, band = autocorrelation(x, lags)
    k = np.arange(1, lags + 1)[:, None]
    Q = n * (n + 2) * np.sum(rho[1:] ** 2 / (n - k), axis=0)
    frac = np.where(np.isnan(rho[1]), np.nan, np.mean(np.abs(rho[1:]) > band, axis=0))
    return frac, stats.chi2.sf(Q, lags)


class TrajectoryRecorder:
    """The ``[trajectory]`` table of a network case: record ``weights`` parameter entries (a seeded
    random choice among all entries, in the flat order of ``/controls``) at every training
    iteration, then write their increments' spectrum and autocorrelation to ``/analysis``."""

    def __init__(self, net, weights: int, lags: int, seed: int = 0) -> None:
        self.net = net
        sizes = [p.size for p in net.params.values()]
        P = int(sum(sizes))
        m = min(int(weights), P)
        self.flat = np.sort(np.random.default_rng(seed).choice(P, m, replace=False)) if m else np.zeros(0, int)
        offsets = np.cumsum([0] + sizes)
        self.where = []             # (name, index within that array)
        names = list(net.params)
        for i in self.flat:
            j = int(np.searchsorted(offsets, i, side="right") - 1)
            self.where.append((names[j], int(i - offsets[j])))
        self.lags = int(lags)
        self.rows: list[np.ndarray] = []

    def on_iterate(self, k: int) -> None:
        params = self.net.params
        self.rows.append(np.array([params[n].reshape(-1)[i] for n, i in self.where]))

    def write(self, sink) -> None:
        if len(self.rows) < 3 or not self.where:
            return
        theta = np.array(self.rows)
        d = increments(theta)
        lags = min(self.lags, d.shape[0] - 1)
        freq, P = power_spectrum(d)
        rho, band = autocorrelation(d, lags)
        frac, pval = whiteness(d, lags)
        sink.write("analysis", "trajectory_weights", theta,
                   {"meaning": "recorded parameter entries per training iteration (k = 0 initial)"})
        sink.write("analysis", "trajectory_indices", self.flat.astype(float),
                   {"meaning": "flat indices of the recorded entries in the order of /controls"})
        sink.write("analysis", "trajectory_frequencies", freq, {"meaning": "cycles per iteration"})
        sink.write("analysis", "trajectory_spectrum", P,
                   {"meaning": "periodogram of the increments, mean over the recorded weights"})
        sink.write("analysis", "trajectory_autocorrelation", rho,
                   {"meaning": "autocorrelation of the increments per lag (rows) and weight (columns)",
                    "band_95": float(band)})
        sink.write("analysis", "trajectory_outside_band", frac,
                   {"meaning": "fraction of lags 1..L outside +-1.96/sqrt(n) (white noise: ~0.05)"})
        sink.write("analysis", "trajectory_ljung_box_p", pval)
        moving = ~np.isnan(frac)
        sink.set_attrs({"trajectory_band_95": float(band), "trajectory_moving_weights": int(moving.sum()),
                        "trajectory_mean_outside_band": float(np.mean(frac[moving])) if moving.any() else float("nan")})
