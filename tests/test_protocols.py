"""The protocols of :mod:`solvers.protocol` are what the steppers, the network model and the
training drivers really provide: checked at run time here (``isinstance`` on the
``runtime_checkable`` protocols: the methods exist) and statically by mypy (``make typecheck``
checks this file: :func:`_static` assigns each object to its protocol, which fails type checking
when a signature drifts)."""
from __future__ import annotations

import numpy as np
import pytest

from pdenet.network import NetworkPDE
from pdenet.network.objective import NetworkObjective
from pdenet.network.pmp import NetworkPMP
from solvers import STEPPERS, ExplicitRK, Theta, make_stepper
from solvers.protocol import (ControlledSystem, HasMetrics, HasSqnorm, Objective, PMPSystem, Stepper)

from netfactory import make_net


def _static(net: NetworkPDE, objective: NetworkObjective, pmp: NetworkPMP, rk: ExplicitRK,
            theta: Theta) -> None:
    """Never called: mypy checks that each object satisfies its protocol."""
    system: ControlledSystem = net
    obj: Objective = objective
    metrics: HasMetrics = objective
    sqnorm: HasSqnorm = objective
    msa_system: PMPSystem = pmp
    steppers: list[Stepper] = [rk, theta, make_stepper("cn")]
    del system, obj, metrics, sqnorm, msa_system, steppers


@pytest.mark.parametrize("name", STEPPERS)
def test_every_stepper_is_a_stepper(name: str) -> None:
    assert isinstance(make_stepper(name, theta=0.3), Stepper)


def test_the_network_is_a_controlled_system_and_its_objectives_fit_the_drivers(rng: np.random.Generator) -> None:
    net, f0, target = make_net(rng, stepper="euler")
    assert isinstance(net, ControlledSystem)
    objective = NetworkObjective(net, f0, target)
    assert isinstance(objective, Objective)
    assert isinstance(objective, HasMetrics) and isinstance(objective, HasSqnorm)
    pmp = NetworkPMP(net, f0, target, box={"a": (-1.0, 1.0)})
    assert isinstance(pmp, PMPSystem) and isinstance(pmp, HasMetrics)


def test_a_plain_object_is_not_a_controlled_system() -> None:
    class RhsOnly:
        def rhs(self, y: np.ndarray, k: int) -> np.ndarray:
            return np.zeros_like(y)

    assert not isinstance(RhsOnly(), ControlledSystem)
