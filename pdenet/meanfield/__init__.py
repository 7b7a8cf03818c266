"""Mean-field signal propagation and optimal learning-rate control (review §3.1–3.2, §4.4).

* :mod:`pdenet.meanfield.maps` — length and correlation maps, fixed points q*, c*, chi_1,
  chi_c, depth scales, critical line, phase diagram.
* :mod:`pdenet.meanfield.empirical` — wide random networks measured layer by layer.
* :mod:`pdenet.meanfield.ntk` — NNGP kernel and NTK recursions, empirical NTK, GD in the kernel
  regime (review §3.2).
* :mod:`pdenet.meanfield.residual` — mean-field maps of residual networks and of the network
  PDE's Euler step, their tau -> 0 limit.
* :mod:`pdenet.meanfield.trainability` — trainability against depth (review Fig. 1b): numba
  training of random tanh networks and the fit of L = c xi_c.
* :mod:`pdenet.meanfield.lr_control` — optimal learning-rate schedule of the SGD modified
  equation on a quadratic: closed form, HJB on a grid, simulated SGD.
"""
from .maps import (
    ACTIVATIONS,
    ORDER_1D,
    ORDER_2D,
    Activation,
    PhaseDiagram,
    activation,
    chi_1,
    chi_c,
    chi_q,
    correlation_map,
    critical_sw2,
    depth_scale,
    fixed_point_c,
    fixed_point_q,
    length_map,
    phase_diagram,
    propagate,
    trainable_depth,
    xi_c,
    xi_q,
)
from .empirical import Measured, conditional_network, correlated_inputs, random_network, sampling_error
from .lr_control import (
    HJBSolution,
    QuadraticSGD,
    compare_schedules,
    expected_loss_path,
    expected_loss_recursion,
    inverse_time_schedule,
    optimal_feedback,
    optimal_moment,
    optimal_schedule,
    simulate_sgd,
    solve_hjb,
    switching_time,
)

__all__ = [
    "ACTIVATIONS", "ORDER_1D", "ORDER_2D", "Activation", "PhaseDiagram", "activation",
    "chi_1", "chi_c", "chi_q", "correlation_map", "critical_sw2", "depth_scale",
    "fixed_point_c", "fixed_point_q", "length_map", "phase_diagram", "propagate",
    "trainable_depth", "xi_c", "xi_q",
    "Measured", "conditional_network", "correlated_inputs", "random_network", "sampling_error",
    "HJBSolution", "QuadraticSGD", "compare_schedules", "expected_loss_path",
    "expected_loss_recursion",
    "inverse_time_schedule", "optimal_feedback", "optimal_moment", "optimal_schedule",
    "simulate_sgd", "solve_hjb", "switching_time",
]
