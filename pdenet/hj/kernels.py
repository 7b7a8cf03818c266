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

Distributed arrays (the PETSc backend, :mod:`pdenet.hj.petsc`): a rank's block
comes padded by ``ghost_width`` cells per side; :func:`extrapolate_padding` fills
the padding beyond an extrapolated boundary by the same rule (:func:`_quad`) and
:func:`padded_derivatives` runs the same per-point function (:func:`_point`) over
the owned cells, so a block's derivatives equal the serial ones exactly.
"""
import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always", error_model="numpy")
def _quad(k, u0, u1, u2):
    """The quadratic through (0, u0), (1, u1), (2, u2) evaluated at -k: the extrapolated value k
    cells beyond the end cell u0 (u1, u2 its inner neighbours). The one boundary rule of the
    serial line kernels and of the padded (distributed) arrays, :func:`extrapolate_padding`."""
    return 0.5 * (k + 1) * (k + 2) * u0 - k * (k + 2) * u1 + 0.5 * k * (k + 1) * u2


@numba.njit(cache=True, inline="always", error_model="numpy")
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
    return _quad(k, u0, u1, u2)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _weno5(v1, v2, v3, v4, v5):
    # the three third-order candidates, each over the common denominator 6: one multiplication
    # by the constant 1/6 instead of three divisions (without fast-math the compiler keeps a
    # division by a constant a division, and divisions bound this kernel's speed)
    sixth = 1.0 / 6.0
    phi1 = (2.0 * v1 - 7.0 * v2 + 11.0 * v3) * sixth
    phi2 = (-v2 + 5.0 * v3 + 2.0 * v4) * sixth
    phi3 = (2.0 * v3 + 5.0 * v4 - v5) * sixth
    s1 = 13.0 / 12.0 * (v1 - 2.0 * v2 + v3) ** 2 + 0.25 * (v1 - 4.0 * v2 + 3.0 * v3) ** 2
    s2 = 13.0 / 12.0 * (v2 - 2.0 * v3 + v4) ** 2 + 0.25 * (v2 - v4) ** 2
    s3 = 13.0 / 12.0 * (v3 - 2.0 * v4 + v5) ** 2 + 0.25 * (3.0 * v3 - 4.0 * v4 + v5) ** 2
    vmax = max(v1 * v1, v2 * v2, v3 * v3, v4 * v4, v5 * v5)
    eps = 1e-6 * vmax + 1e-99
    # the weights a_k = c_k / (eps + s_k)^2 over a common denominator: with t_k = (eps + s_k)/eps
    # (1 <= t_k <~ 4e7, so neither products below over- nor underflow) and T_k = t_k^2,
    # sum a_k phi_k / sum a_k = sum c_k phi_k T_i T_j / sum c_k T_i T_j ({i, j, k} = {1, 2, 3}):
    # two divisions instead of four (the divisions bound the kernel's speed)
    ie = 1.0 / eps
    t1 = (eps + s1) * ie
    t2 = (eps + s2) * ie
    t3 = (eps + s3) * ie
    T1 = t1 * t1
    T2 = t2 * t2
    T3 = t3 * t3
    w1 = 0.1 * (T2 * T3)
    w2 = 0.6 * (T1 * T3)
    w3 = 0.3 * (T1 * T2)
    return (w1 * phi1 + w2 * phi2 + w3 * phi3) / (w1 + w2 + w3)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _point(um3, um2, um1, u0, up1, up2, up3, ih, order, lap_order):
    """(D-u, D+u, second difference) at one point from its 7-point stencil."""
    if order == 1:
        dmv = (u0 - um1) * ih
        dpv = (up1 - u0) * ih
    else:
        d1 = (um2 - um3) * ih
        d2 = (um1 - um2) * ih
        d3 = (u0 - um1) * ih
        d4 = (up1 - u0) * ih
        d5 = (up2 - up1) * ih
        d6 = (up3 - up2) * ih
        dmv = _weno5(d1, d2, d3, d4, d5)
        dpv = _weno5(d6, d5, d4, d3, d2)
    ih2 = ih * ih
    if lap_order == 2:
        lv = (um1 - 2.0 * u0 + up1) * ih2
    elif lap_order == 4:
        lv = (-um2 + 16.0 * um1 - 30.0 * u0 + 16.0 * up1 - up2) * (ih2 / 12.0)
    else:
        lv = 0.0
    return dmv, dpv, lv


@numba.njit(cache=True, error_model="numpy", parallel=True)
def axis_derivatives(u3, h, order, periodic, lap_order, dm3, dp3, lap3):
    """One-sided derivatives along the middle axis of ``u3`` (A, n, B) into ``dm3``/``dp3``;
    the second difference along it is *added* to ``lap3`` (skipped when ``lap_order`` is 0).

    The interior (3 <= i < n - 3) runs without boundary branches, with the contiguous index
    innermost (b when B > 1, i when B == 1) so that the compiler can vectorise it; the (a, i)
    pairs (or the lines a when B == 1) are shared among numba's threads, each point computed as
    in one thread (the result does not depend on the thread count)."""
    A, n, B = u3.shape
    ih = 1.0 / h
    # B == 1: 2-D C-contiguous views, so that the inner index i has a known unit stride
    u2 = u3.reshape(A, n * B)
    dm2 = dm3.reshape(A, n * B)
    dp2 = dp3.reshape(A, n * B)
    lap2 = lap3.reshape(A, n * B)
    if B == 1:
        for a in numba.prange(A):
            r = u2[a]
            rm = dm2[a]
            rp = dp2[a]
            rl = lap2[a]
            for i in range(3, n - 3):
                dmv, dpv, lv = _point(r[i - 3], r[i - 2], r[i - 1], r[i], r[i + 1], r[i + 2], r[i + 3],
                                      ih, order, lap_order)
                rm[i] = dmv
                rp[i] = dpv
                rl[i] += lv
    else:
        inner = max(n - 6, 0)
        for ai in numba.prange(A * inner):
            a = ai // inner
            i = 3 + ai % inner
            line = u3[a]
            for b in range(B):
                dmv, dpv, lv = _point(line[i - 3, b], line[i - 2, b], line[i - 1, b], line[i, b],
                                      line[i + 1, b], line[i + 2, b], line[i + 3, b], ih, order, lap_order)
                dm3[a, i, b] = dmv
                dp3[a, i, b] = dpv
                lap3[a, i, b] += lv
    for a in numba.prange(A):
        line = u3[a]
        for i in range(n):
            if 3 <= i < n - 3:
                continue
            for b in range(B):
                dmv, dpv, lv = _point(_ghost(line, i - 3, n, b, periodic), _ghost(line, i - 2, n, b, periodic),
                                      _ghost(line, i - 1, n, b, periodic), line[i, b],
                                      _ghost(line, i + 1, n, b, periodic), _ghost(line, i + 2, n, b, periodic),
                                      _ghost(line, i + 3, n, b, periodic), ih, order, lap_order)
                dm3[a, i, b] = dmv
                dp3[a, i, b] = dpv
                lap3[a, i, b] += lv


@numba.njit(cache=True, inline="always", error_model="numpy")
def _ghost1(r, j, n, periodic):
    """u at index j of the 1-D line r (ghost values as in :func:`_ghost`)."""
    if 0 <= j < n:
        return r[j]
    if periodic:
        return r[j % n]
    if j < 0:
        k = -j
        u0, u1, u2 = r[0], r[1], r[2]
    else:
        k = j - (n - 1)
        u0, u1, u2 = r[n - 1], r[n - 2], r[n - 3]
    return _quad(k, u0, u1, u2)


#: lines per work item of :func:`last_axis_derivatives` (each item has its own buffers)
LINES_PER_ITEM = 8


@numba.njit(cache=True, error_model="numpy", parallel=True)
def last_axis_derivatives(u2, h, order, periodic, lap_order, dm2, dp2, lap2):
    """:func:`axis_derivatives` along the contiguous last axis of ``u2`` (A, n): each line is
    copied with its ghost values into a local (n + 6) buffer, so that the stencil loop runs over
    unit-stride memory that aliases nothing (it vectorises) and without boundary branches; the
    results go through local lines too. Groups of LINES_PER_ITEM lines are shared among numba's
    threads. (Transposed tiles of 16 lines, the previous layout, were 1.13x slower: measured
    with process time, 512^2, WENO5.)"""
    A, n = u2.shape
    ih = 1.0 / h
    items = (A + LINES_PER_ITEM - 1) // LINES_PER_ITEM
    for item in numba.prange(items):
        ext = np.empty(n + 6)
        om = np.empty(n)
        op = np.empty(n)
        ol = np.empty(n)
        for a in range(item * LINES_PER_ITEM, min(A, (item + 1) * LINES_PER_ITEM)):
            r = u2[a]
            for j in range(n):
                ext[j + 3] = r[j]
            for j in range(3):
                ext[j] = _ghost1(r, j - 3, n, periodic)
                ext[n + 3 + j] = _ghost1(r, n + j, n, periodic)
            for i in range(n):
                dmv, dpv, lv = _point(ext[i], ext[i + 1], ext[i + 2], ext[i + 3], ext[i + 4], ext[i + 5],
                                      ext[i + 6], ih, order, lap_order)
                om[i] = dmv
                op[i] = dpv
                ol[i] = lv
            for i in range(n):
                dm2[a, i] = om[i]
                dp2[a, i] = op[i]
                lap2[a, i] += ol[i]


@numba.njit(cache=True, inline="always")
def ghost_width(order, lap_order):
    """Padding cells the stencils of :func:`padded_derivatives` read: 3 (WENO5), 2 (first order
    with the 4th-order Laplacian), 1 (first order, 2nd-order Laplacian)."""
    if order == 5:
        return 3
    return 2 if lap_order == 4 else 1


@numba.njit(cache=True, error_model="numpy")
def extrapolate_padding(u3, g, lower, upper):
    """Fill the ``g`` padding layers of the middle axis of a padded block ``u3`` (A, n + 2g, B)
    beyond a physical boundary (``lower``/``upper``) by the serial rule :func:`_quad` (the
    quadratic through the three end cells; the block must own at least 3 cells there)."""
    A, m, B = u3.shape
    top = m - g - 1
    for a in range(A):
        for b in range(B):
            if lower:
                u0, u1, u2 = u3[a, g, b], u3[a, g + 1, b], u3[a, g + 2, b]
                for k in range(1, g + 1):
                    u3[a, g - k, b] = _quad(k, u0, u1, u2)
            if upper:
                u0, u1, u2 = u3[a, top, b], u3[a, top - 1, b], u3[a, top - 2, b]
                for k in range(1, g + 1):
                    u3[a, top + k, b] = _quad(k, u0, u1, u2)


@numba.njit(cache=True, error_model="numpy")
def padded_derivatives(up, g, h, order, lap_order, dm, dp, lap):
    """:func:`axis_derivatives` for every axis of an owned block seen with ``g`` padding cells
    (a rank's ghosted local array, its padding filled by the neighbours, the periodic wrap or
    :func:`extrapolate_padding`): the same per-point arithmetic (:func:`_point`), no boundary
    branches.

    ``up``: (m0, m1, m2) padded block; a d-dimensional mesh occupies the last d axes (the
    leading unit axes have no padding). ``dm``, ``dp``: (d, n0, n1, n2) and ``lap`` (n0, n1, n2)
    receive the one-sided derivatives and the Laplacian (the second differences summed over the
    axes in order, as the serial kernels do; zero when ``lap_order`` is 0) of the owned cells.
    ``h``: (d,) spacings."""
    ndim = dm.shape[0]
    n0, n1, n2 = lap.shape
    first = 3 - ndim
    o0 = g if first == 0 else 0
    o1 = g if first <= 1 else 0
    o2 = g
    # offsets beyond the stencil's reach are clamped (their values are not used by _point)
    reach = ghost_width(order, lap_order)
    k2 = min(2, reach)
    k3 = min(3, reach)
    for i0 in range(n0):
        for i1 in range(n1):
            for i2 in range(n2):
                lap[i0, i1, i2] = 0.0
    for d in range(ndim):
        ax = first + d
        s0 = 1 if ax == 0 else 0
        s1 = 1 if ax == 1 else 0
        t = 1 if ax == 2 else 0
        ih = 1.0 / h[d]
        for i0 in range(n0):
            j0 = i0 + o0
            for i1 in range(n1):
                j1 = i1 + o1
                # the seven stencil lines (the same line shifted along the last axis when ax == 2)
                rm3 = up[j0 - k3 * s0, j1 - k3 * s1]
                rm2 = up[j0 - k2 * s0, j1 - k2 * s1]
                rm1 = up[j0 - s0, j1 - s1]
                r0 = up[j0, j1]
                rp1 = up[j0 + s0, j1 + s1]
                rp2 = up[j0 + k2 * s0, j1 + k2 * s1]
                rp3 = up[j0 + k3 * s0, j1 + k3 * s1]
                om = dm[d, i0, i1]
                op = dp[d, i0, i1]
                ol = lap[i0, i1]
                if t == 0:
                    for i2 in range(n2):
                        j2 = i2 + o2
                        dmv, dpv, lv = _point(rm3[j2], rm2[j2], rm1[j2], r0[j2], rp1[j2], rp2[j2], rp3[j2],
                                              ih, order, lap_order)
                        om[i2] = dmv
                        op[i2] = dpv
                        ol[i2] += lv
                else:
                    for i2 in range(n2):
                        j2 = i2 + o2
                        dmv, dpv, lv = _point(r0[j2 - k3], r0[j2 - k2], r0[j2 - 1], r0[j2], r0[j2 + 1], r0[j2 + k2],
                                              r0[j2 + k3], ih, order, lap_order)
                        om[i2] = dmv
                        op[i2] = dpv
                        ol[i2] += lv


@numba.njit(cache=True, inline="always", error_model="numpy")
def _godunov_1d(pm, pp, a, inv_a, b):
    """Godunov's h-hat of h(p) = a/2 p^2 + b p on [p-, p+]: min over the interval when
    p- <= p+, else the max over [p+, p-] (h is convex: the max sits at an end point)."""
    hm = 0.5 * a * pm * pm + b * pm
    hp = 0.5 * a * pp * pp + b * pp
    lo = min(pm, pp)
    hi = max(pm, pp)
    if a > 0.0:
        ps = min(max(-b * inv_a, lo), hi)
        hmin = 0.5 * a * ps * ps + b * ps
    else:
        hmin = min(hm, hp)
    return hmin if pm <= pp else max(hm, hp)


@numba.njit(cache=True, error_model="numpy", parallel=True)
def godunov_quadratic(dm, dp, a, drift, has_drift, out, speed):
    """Godunov numerical Hamiltonian of the separable convex H(x, p) = sum_d a/2 p_d^2 + b_d(x) p_d.

    ``dm``, ``dp``: (ndim, N) one-sided derivatives; ``drift``: (ndim, N) b (ignored unless
    ``has_drift``). Per dimension: the minimum of h over [p-, p+] when p- <= p+, else the maximum
    over [p+, p-] (exact for separable H). ``out`` (N) receives H-hat; ``speed`` (ndim) the
    maximum of |dh/dp| = |a p + b| over the gradient range (for the CFL bound). The values are a
    parallel loop over the cells without data-dependent branches; the speed is a separate loop
    (a loop that also carries the maximum does not vectorise)."""
    ndim, N = dm.shape
    inv_a = 1.0 / a if a > 0.0 else 0.0
    for d in range(ndim):
        pm_ = dm[d]
        pp_ = dp[d]
        if d == 0:
            for k in numba.prange(N):
                out[k] = _godunov_1d(pm_[k], pp_[k], a, inv_a, drift[d, k] if has_drift else 0.0)
        else:
            for k in numba.prange(N):
                out[k] += _godunov_1d(pm_[k], pp_[k], a, inv_a, drift[d, k] if has_drift else 0.0)
        smax = 0.0
        for k in range(N):
            b = drift[d, k] if has_drift else 0.0
            smax = max(smax, max(abs(a * pm_[k] + b), abs(a * pp_[k] + b)))
        speed[d] = smax


@numba.njit(cache=True, error_model="numpy")
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


@numba.njit(cache=True, error_model="numpy")
def axpy_rhs(hhat, lap, nu, out):
    """out = -hhat + nu * lap (the right-hand side of u_t + H = nu Lap u)."""
    for k in range(out.size):
        out[k] = -hhat[k] + nu * lap[k]


@numba.njit(cache=True, error_model="numpy", parallel=True)
def ssp_rk3_stage(stage, hhat, lap, nu, u, v, dt, out):
    """One stage of SSP-RK3 (Shu-Osher form) fused with the right-hand side L = -hhat + nu lap
    (``nu`` 0: L = -hhat, ``lap`` not read), in one pass over the cells:

    * stage 1: out = dt L + u              (``v`` unused)
    * stage 2: out = (dt L + v) / 4 + 3/4 u  (v = stage 1)
    * stage 3: out = 2/3 (dt L + v) + u/3    (v = stage 2)

    The operations and their order are those of :func:`solvers.ssp.ssp_rk3_step`'s numpy
    updates, so the result is the same to the last bit."""
    for k in numba.prange(out.size):
        L = -hhat[k] + nu * lap[k] if nu != 0.0 else -hhat[k]
        if stage == 1:
            out[k] = dt * L + u[k]
        elif stage == 2:
            out[k] = (L * dt + v[k]) * 0.25 + 0.75 * u[k]
        else:
            out[k] = (L * dt + v[k]) * (2.0 / 3.0) + u[k] / 3.0


@numba.njit(cache=True, error_model="numpy")
def euler_from_rate(rate, u, dt, out):
    """out = dt rate + u (the first stage from a right-hand side already evaluated)."""
    for k in range(out.size):
        out[k] = dt * rate[k] + u[k]


def as3(arr, axis):
    """The (A, n, B) view of a C-contiguous array along ``axis``."""
    shape = arr.shape
    return arr.reshape(math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))



def dispatchers():
    """The numba dispatchers of this module (for compile/cache statistics)."""
    return [axis_derivatives, last_axis_derivatives, godunov_quadratic, llf_quadratic, axpy_rhs,
            extrapolate_padding, padded_derivatives, ssp_rk3_stage, euler_from_rate]
