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
* :func:`whiteness` -- the fraction of lags 1..L outside the band (about 0.05 for white noise) and
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
    return acov / acov[0], 1.96 / np.sqrt(n)


def whiteness(x, lags: int):
    """Per column: (fraction of lags 1..lags outside the 95 % band, Ljung-Box p-value)."""
    x = np.asarray(x, float)
    x = x[:, None] if x.ndim == 1 else x
    n = x.shape[0]
    rho, band = autocorrelation(x, lags)
    k = np.arange(1, lags + 1)[:, None]
    Q = n * (n + 2) * np.sum(rho[1:] ** 2 / (n - k), axis=0)
    return np.mean(np.abs(rho[1:]) > band, axis=0), stats.chi2.sf(Q, lags)
