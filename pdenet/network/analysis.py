"""Forward-problem analysis of the network PDE (Liu & Markowich Sect. 3).

Everything acts on the discrete operator B = h b of one control interval
(an N x N matrix on the label mesh, h the cell volume, so that B
approximates the integral operator on L^2(Y)). L^2(Y) inner products are
h-weighted Euclidean ones.

* :func:`spectrum` -- eigenvalues of B and of B_s = (B + B^T)/2; B_s >= 0 is the
  condition of the Lyapunov estimates of Sect. 3.2.
* :func:`steady_state` -- B f = a has a solution iff a in R(B): the relative residual
  of the least-squares solution is the range test; the numerical null-space
  dimension of B; the minimum-norm f_inf.
* :func:`finite_rank_stability` -- Theorem 3.4 for a finite-rank kernel
  B f = sum_r phi_r (psi_r, f): the generalised Gram matrix T, the SVD form
  D T of the paper, and the decay rate of the linearisation of
  u_t = -B sigma(u) at u = 0 (u = sum_r c_r phi_r): dc/dt = -sigma'(0) G c with
  G_rk = (psi_r, phi_k), which has the eigenvalues of sigma'(0) D T.
* :func:`linearised_operator` -- the linearisation -diag(sigma'(u(t0))) B(t0) of
  u_t = -B sigma(u) along a trajectory (Sect. 3.5): growing and decaying modes.
"""
import numpy as np

from . import activations as act

__all__ = ["spectrum", "steady_state", "finite_rank_stability", "linearised_operator", "forward_analysis"]


def _sorted(ev):
    return ev[np.lexsort((ev.imag, ev.real))]


def spectrum(B):
    """(eigenvalues of B sorted by real part, eigenvalues of B_s ascending)."""
    B = np.asarray(B, dtype=float)
    return _sorted(np.linalg.eigvals(B)), np.linalg.eigvalsh(0.5 * (B + B.T))


def steady_state(B, a, h, rtol=1e-10):
    """Steady states f_inf of f_t = sigma(a - B f), i.e. B f = a (for sigma with sigma(0) = 0 only there).

    Returns dict: ``f`` (minimum-norm least-squares solution), ``range_residual``
    ||B f - a|| / ||a|| (0 iff a in R(B), up to round-off), ``nullity`` (the
    dimension of N(B): singular values below ``rtol`` times the largest),
    ``rank``, ``exists`` (range residual below 1e-8).
    """
    B, a = np.asarray(B, float), np.asarray(a, float)
    s = np.linalg.svd(B, compute_uv=False)
    cut = rtol * (s[0] if s.size and s[0] > 0 else 1.0)
    rank = int(np.sum(s > cut))
    f, *_ = np.linalg.lstsq(B, a, rcond=rtol)
    na = np.sqrt(h) * np.linalg.norm(a)
    res = np.sqrt(h) * np.linalg.norm(B @ f - a)
    rel = float(res / na) if na > 0 else float(res)
    return {"f": f, "range_residual": rel, "nullity": B.shape[0] - rank, "rank": rank, "exists": rel < 1e-8}


def finite_rank_stability(phi, psi, h, activation="tanh"):
    """Theorem 3.4 for B f = sum_r phi_r (psi_r, f) (phi, psi: (R, N) nodal values).

    Returns dict with ``gram`` G_rk = (psi_r, phi_k), ``T`` and ``D`` of the paper's
    SVD form B = sum_l mu_l phi_l (psi_l, .) (orthonormal phi_l, psi_l;
    T_ln = (phi_l, psi_n), D = diag(mu)), ``T_invertible`` (its condition number below
    1e12), ``DT_positive`` (min eigenvalue of the symmetric part of DT > 0),
    ``eigenvalues`` of sigma'(0) D T, and ``rate`` = their smallest real part: the
    predicted exponential decay rate of u near 0 (when both conditions hold).
    """
    phi, psi = np.atleast_2d(np.asarray(phi, float)), np.atleast_2d(np.asarray(psi, float))
    R = phi.shape[0]
    gram = h * psi @ phi.T
    B = h * phi.T @ psi                     # the matrix of B on nodal values
    U, mu, Vt = np.linalg.svd(B)
    U, mu, Vt = U[:, :R], mu[:R], Vt[:R]
    phis, psis = U / np.sqrt(h), Vt / np.sqrt(h)       # L^2(Y)-orthonormal: columns / rows
    T = h * phis.T @ psis.T                 # T_ln = (phi_l, psi_n)
    D = np.diag(mu)
    DT = D @ T
    d0 = act.Activation(activation).prime(np.zeros(1))[0]
    ev = _sorted(np.linalg.eigvals(d0 * DT))
    return {"gram": gram, "T": T, "D": D, "DT": DT, "sigma_prime_0": float(d0),
            "T_condition": float(np.linalg.cond(T)), "T_invertible": bool(np.linalg.cond(T) < 1e12),
            "DT_positive": bool(np.linalg.eigvalsh(0.5 * (DT + DT.T)).min() > 0),
            "eigenvalues": ev, "gram_eigenvalues": _sorted(np.linalg.eigvals(d0 * gram)),
            "rate": float(ev.real.min())}


def linearised_operator(u, B, activation="tanh"):
    """Eigen-analysis of A = -diag(sigma'(u)) B, the linearisation of u_t = -B sigma(u) at u.

    Returns dict: ``eigenvalues`` (sorted by real part), ``growing`` (count with
    positive real part above round-off), ``decaying`` (negative), ``modes``
    (eigenvectors as columns, same order).
    """
    d = act.Activation(activation).prime(np.asarray(u, float))
    A = -d[:, None] * np.asarray(B, float)
    ev, vec = np.linalg.eig(A)
    order = np.lexsort((ev.imag, ev.real))
    ev, vec = ev[order], vec[:, order]
    tol = 1e-10 * max(1.0, float(np.abs(ev).max(initial=0.0)))
    return {"eigenvalues": ev, "growing": int(np.sum(ev.real > tol)), "decaying": int(np.sum(ev.real < -tol)),
            "modes": vec}


def forward_analysis(net, h, linear_u=()):
    """The Sect. 3 analysis of a network's (trained) controls, for ``/analysis``.

    ``linear_u``: (t, u of one sample, interval k) along a trajectory, for the linearised
    operator. Returns (arrays, headline): ``arrays`` a list of (name, array, meaning or None)
    in writing order, ``headline`` the root attributes (min_spectrum_Bs, range_residual and,
    for a low-rank kernel, Theorem 3.4's rate and tests).
    """
    K, name = net.schedule.intervals, net.activation.name
    mats = [net.operator.matrix(k, h) for k in range(K)]
    specB, specBs = zip(*(spectrum(B) for B in mats))
    out = [("spectrum_B", np.array(specB), "eigenvalues of B = h b per interval"),
           ("spectrum_Bs", np.array(specBs), "eigenvalues of (B + B^T)/2")]
    steady = [steady_state(B, net.a[k], h) for k, B in enumerate(mats)]
    out += [("steady_state_f", np.array([s["f"] for s in steady]), None),
            ("range_residual", np.array([s["range_residual"] for s in steady]),
             "||B f - a|| / ||a|| at the least-squares f: 0 iff a in R(B)"),
            ("nullity", np.array([s["nullity"] for s in steady]), None)]
    headline = {"min_spectrum_Bs": float(min(s.min() for s in specBs)),
                "range_residual": float(max(s["range_residual"] for s in steady))}
    if net.operator.kind == "lowrank":
        st = [finite_rank_stability(net.operator.phi[k], net.operator.psi[k], h, name) for k in range(K)]
        for key in ("gram", "T", "DT", "eigenvalues"):
            out.append((f"thm34_{key}", np.array([s[key] for s in st]), None))
        out.append(("thm34_rate", np.array([s["rate"] for s in st]),
                    "smallest real part of eig(sigma'(0) D T): predicted decay rate of u"))
        headline.update({"thm34_rate": st[0]["rate"],
                         "thm34_T_invertible": int(all(s["T_invertible"] for s in st)),
                         "thm34_DT_positive": int(all(s["DT_positive"] for s in st))})
    if linear_u:
        lin = [linearised_operator(u, mats[k], name) for _, u, k in linear_u]
        out += [("linearised_times", np.array([t for t, _, _ in linear_u]), None),
                ("linearised_eigenvalues", np.array([r["eigenvalues"] for r in lin]),
                 "eigenvalues of -sigma'(u(t)) B(t) along sample 0"),
                ("linearised_growing", np.array([r["growing"] for r in lin]), None),
                ("linearised_decaying", np.array([r["decaying"] for r in lin]), None)]
    return out, headline
