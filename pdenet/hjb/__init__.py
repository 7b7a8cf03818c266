"""The ``hjb`` model: controlled SGD (thesis §4.4) — the HJB value function on the Hamilton-Jacobi
scheme of :mod:`pdenet.hj`, the optimal feedback, and forward densities (:mod:`.density`)."""
