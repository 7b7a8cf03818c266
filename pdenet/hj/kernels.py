"""numba kernels of the Hamilton-Jacobi discretisation (arrays in, arrays out, ``cache=True``).

An n-D array is seen along one axis ``d`` as a C-contiguous (A, n, B) view
(A = product of the sizes before d, B = product after), so one kernel serves
every axis of 1-, 2- and 3-D meshes without copies. Ghost values beyond the
ends of a line come from the boundary rule:

* periodic: wrap around;
* extrapolate: the quadratic through the three end cells (exact for the
  quadratic profiles of the Cole-Hopf tests; the second difference in the end
  cell equals that of its neighbour).

One-sided derivatives (``order`` 1 or 5):

* first order: D-u_i = (u_i - u_{i-1})/h, D+u_i = (u_{i+1} - u_i)/h;
* WENO5 (Jiang & Peng 2000): the convex combination of the three third-order
  one-sided derivatives from the five divided differences v1..v5, with weights
  0.1, 0.6, 0.3 / (eps + S_k)^2 built from the smoothness indicators S_k;
  eps = 1e-6 max v_k^2 + 1e-99 keeps it scale-invariant.

Second differences for the diffusion: 2nd-order (1, -2, 1)/h^2 or 4th-order
(-1, 16, -30, 16, -1)/(12 h^2).
"""
import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _ghost(line_a, j, n, b, periodic):
    """u at index j (possibly outside 0..n-1) of the line u3[a, :, b] (``line_a`` = u3[a])."""
    if 0 <= j < n:
        return line_a[j, b]
    if periodic:
        return line_a[j % n, b]
    if j < 0:
        k = -j
        u0, u1, u2 = line_a[0, b], line_a[1, b], line_a[2, b]
    else:
        k = j - (n - 1)
        u0, u1, u2 = line_a[n - 1, b], line_a[n - 2, b], line_a[n - 3, b]
    # quadratic through (0, u0), (1, u1), (2, u2) evaluated at -k
    return 0.5 * (k + 1) * (k + 2) * u0 - k * (k + 2) * u1 + 0.5 * k * (k + 1) * u2


@numba.njit(cache=True, inline="always")
def _weno5(v1, v2, v3, v4, v5):
    phi1 = v1 / 3.0 - 7.0 * v2 / 6.0 + 11.0 * v3 / 6.0
    phi2 = -v2 / 6.0 + 5.0 * v3 / 6.0 + v4 / 3.0
    phi3 = v3 / 3.0 + 5.0 * v4 / 6.0 - v5 / 6.0
    s1 = 13.0 / 12.0 * (v1 - 2.0 * v2 + v3) ** 2 + 0.25 * (v1 - 4.0 * v2 + 3.0 * v3) ** 2
    s2 = 13.0 / 12.0 * (v2 - 2.0 * v3 + v4) ** 2 + 0.25 * (v2 - v4) ** 2
    s3 = 13.0 / 12.0 * (v3 - 2.0 * v4 + v5) ** 2 + 0.25 * (3.0 * v3 - 4.0 * v4 + v5) ** 2
    vmax = max(v1 * v1, v2 * v2, v3 * v3, v4 * v4, v5 * v5)
    eps = 1e-6 * vmax + 1e-99
    a1 = 0.1 / (eps + s1) ** 2
    a2 = 0.6 / (eps + s2) ** 2
    a3 = 0.3 / (eps + s3) ** 2
    return (a1 * phi1 + a2 * phi2 + a3 * phi3) / (a1 + a2 + a3)


@numba.njit(cache=True)
def axis_derivatives(u3, h, order, periodic, lap_order, dm3, dp3, lap3):
    """One-sided derivatives along the middle axis of ``u3`` (A, n, B) into ``dm3``/``dp3``;
    the second difference along it is *added* to ``lap3`` (skipped when ``lap_order`` is 0)."""
    A, n, B = u3.shape
    ih = 1.0 / h
    ih2 = ih * ih
    for a in range(A):
        line = u3[a]
        for i in range(n):
            inner = 3 <= i <= n - 4
            for b in range(B):
                if inner:
                    um3 = line[i - 3, b]
                    um2 = line[i - 2, b]
                    um1 = line[i - 1, b]
                    u0 = line[i, b]
                    up1 = line[i + 1, b]
                    up2 = line[i + 2, b]
                    up3 = line[i + 3, b]
                else:
                    um3 = _ghost(line, i - 3, n, b, periodic)
                    um2 = _ghost(line, i - 2, n, b, periodic)
                    um1 = _ghost(line, i - 1, n, b, periodic)
                    u0 = line[i, b]
                    up1 = _ghost(line, i + 1, n, b, periodic)
                    up2 = _ghost(line, i + 2, n, b, periodic)
                    up3 = _ghost(line, i + 3, n, b, periodic)
                if order == 1:
                    dm3[a, i, b] = (u0 - um1) * ih
                    dp3[a, i, b] = (up1 - u0) * ih
                else:
                    d1 = (um2 - um3) * ih
                    d2 = (um1 - um2) * ih
                    d3 = (u0 - um1) * ih
                    d4 = (up1 - u0) * ih
                    d5 = (up2 - up1) * ih
                    d6 = (up3 - up2) * ih
                    dm3[a, i, b] = _weno5(d1, d2, d3, d4, d5)
                    dp3[a, i, b] = _weno5(d6, d5, d4, d3, d2)
                if lap_order == 2:
                    lap3[a, i, b] += (um1 - 2.0 * u0 + up1) * ih2
                elif lap_order == 4:
                    lap3[a, i, b] += (-um2 + 16.0 * um1 - 30.0 * u0 + 16.0 * up1 - up2) * (ih2 / 12.0)


@numba.njit(cache=True)
def godunov_quadratic(dm, dp, a, drift, has_drift, out, speed):
    """Godunov numerical Hamiltonian of the separable convex H(x, p) = sum_d a/2 p_d^2 + b_d(x) p_d.

    ``dm``, ``dp``: (ndim, N) one-sided derivatives; ``drift``: (ndim, N) b (ignored unless
    ``has_drift``). Per dimension: the minimum of h over [p-, p+] when p- <= p+, else the maximum
    over [p+, p-] (exact for separable H). ``out`` (N) receives H-hat; ``speed`` (ndim) the
    maximum of |dh/dp| = |a p + b| over the gradient range (for the CFL bound)."""
    ndim, N = dm.shape
    for d in range(ndim):
        speed[d] = 0.0
    for k in range(N):
        total = 0.0
        for d in range(ndim):
            pm = dm[d, k]
            pp = dp[d, k]
            b = drift[d, k] if has_drift else 0.0
            hm = 0.5 * a * pm * pm + b * pm
            hp = 0.5 * a * pp * pp + b * pp
            if pm <= pp:
                if a > 0.0:
                    ps = -b / a
                    if ps < pm:
                        ps = pm
                    elif ps > pp:
                        ps = pp
                    val = 0.5 * a * ps * ps + b * ps
                else:
                    val = hm if hm < hp else hp
            else:
                val = hm if hm > hp else hp
            total += val
            s = max(abs(a * pm + b), abs(a * pp + b))
            if s > speed[d]:
                speed[d] = s
        out[k] = total


@numba.njit(cache=True)
def llf_quadratic(dm, dp, a, drift, has_drift, out, speed):
    """Local Lax-Friedrichs numerical Hamiltonian of H = sum_d a/2 p_d^2 + b_d p_d:
    H((p- + p+)/2) - sum_d alpha_d (p+ - p-)/2 with alpha_d = max |a p + b| over [p-, p+]
    (attained at an end point: h is convex)."""
    ndim, N = dm.shape
    for d in range(ndim):
        speed[d] = 0.0
    for k in range(N):
        total = 0.0
        for d in range(ndim):
            pm = dm[d, k]
            pp = dp[d, k]
            b = drift[d, k] if has_drift else 0.0
            pc = 0.5 * (pm + pp)
            alpha = max(abs(a * pm + b), abs(a * pp + b))
            total += 0.5 * a * pc * pc + b * pc - 0.5 * alpha * (pp - pm)
            if alpha > speed[d]:
                speed[d] = alpha
        out[k] = total


@numba.njit(cache=True)
def axpy_rhs(hhat, lap, nu, out):
    """out = -hhat + nu * lap (the right-hand side of u_t + H = nu Lap u)."""
    for k in range(out.size):
        out[k] = -hhat[k] + nu * lap[k]


def as3(arr, axis):
    """The (A, n, B) view of a C-contiguous array along ``axis``."""
    shape = arr.shape
    A = int(np.prod(shape[:axis], dtype=np.int64))
    B = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return arr.reshape(A, shape[axis], B)

