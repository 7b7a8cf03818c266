"""The protocol between a model and the steppers (duck-typed, documented here).

A *controlled system* y' = F(y; p_k) with parameters piecewise constant over
control intervals k provides:

``rhs(y, k) -> F``
    the right-hand side at state ``y`` (any array shape) with the controls of
    interval ``k``; returns a new array.
``linearise(y, k) -> (F, lin)``
    the right-hand side and an opaque record ``lin`` of what the derivative
    products below need at ``y`` (for the network: y and the pre-activation u).
``jvp(lin, k, v) -> J v``
    Jacobian-vector product dF/dy v at the linearisation point (implicit
    steppers only).
``vjp(lin, k, w, grad) -> J^T w``
    vector-Jacobian product; if ``grad`` is not None also *adds*
    (dF/dp_k)^T w into the model's gradient buffer ``grad``. The buffer is an
    explicit object owned by the caller, who makes and zeroes it; the model keeps
    no record of which buffer it was given (for the network:
    ``pdenet.network.pde.Gradient``).

The steppers use only these calls, so every model gets the exact discrete
adjoint of every stepper: the gradient of the discrete loss, not of a
discretised continuous adjoint.
"""
