"""Issue 17, part 5: PyTorch interchange of the discrete network.

``to_torch`` turns a network (or a network run's result) into a ``torch.nn.Module`` whose loss
and autograd gradients agree with pdenet's loss and exact discrete adjoint to 1e-12 (the oracle
is each side's own independent computation); ``from_torch`` brings the module -- or a plain
PyTorch residual network -- back onto a label mesh, with the same loss and gradients.
"""
import os

import numpy as np
import pytest

from conftest import CASES
from netfactory import make_net

try:
    import torch
except ImportError:  # CI installs the test extra: there a missing oracle is a failure, not a skip
    if os.environ.get("CI"):
        raise
    pytest.skip("PyTorch is optional (pip install -e .[test])", allow_module_level=True)

import pdenet
from pdenet.network import from_torch, to_torch
from pdenet.network.interchange import ResidualBlock

TOL = 1e-12


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def torch_loss_and_grad(module, f0, target):
    module.zero_grad()
    J = module.loss(torch.tensor(f0), target)
    J.backward()
    return J.item(), {k: p.grad.numpy().copy() for k, p in module.named_parameters()}


def agree(net, module, f0, target):
    J, grad, _, _ = net.loss_and_gradient(f0, target)
    Jt, gt = torch_loss_and_grad(module, f0, target)
    assert abs(J - Jt) <= TOL * abs(J), (J, Jt)
    assert set(gt) == set(grad)
    for k in gt:
        assert rel(gt[k], grad[k]) < TOL, (k, rel(gt[k], grad[k]))
    return J


@pytest.mark.parametrize("stepper", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("loss,activation,tikhonov", [("l2", "tanh", 0.0), ("softmax", "relu", 0.0),
                                                      ("l2-field", "elu", 0.3), ("logistic", "arctan", 0.1)])
def test_to_torch_and_back(stepper, loss, activation, tikhonov):
    rng = np.random.default_rng(7)
    net, f0, target = make_net(rng, stepper=stepper, loss=loss, activation=activation, cells=(12,), steps=6,
                               intervals=3, samples=4, tikhonov=tikhonov)
    module = to_torch(net)
    assert isinstance(module, torch.nn.Module)
    agree(net, module, f0, target)
    back = from_torch(module)                          # the round trip: the same network
    for k, v in net.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    agree(back, module, f0, target)


def test_implicit_steppers_are_refused():
    net, _, _ = make_net(np.random.default_rng(0), stepper="cn")
    with pytest.raises(ValueError, match="implicit"):
        to_torch(net)


def test_a_run_as_a_module(tmp_path):
    """The trained controls of a run (read back from its file) as a PyTorch module."""
    out = tmp_path / "d.h5"
    pdenet.run(os.path.join(CASES, "network_depth.toml"), output=str(out),
               overrides=["time.steps=8", "mesh.cells=[16]", "model.intervals=2"])
    r = pdenet.open(out)
    module = to_torch(r)
    Jt, gt = torch_loss_and_grad(module, r.analysis["inputs"], r.analysis["targets"])
    assert abs(Jt - r.attrs["loss"]) <= TOL * r.attrs["loss"]
    for k in ("a", "b"):
        assert rel(gt[k], r.gradients[k]) < TOL, k
    with torch.no_grad():
        np.testing.assert_allclose(module.output(torch.tensor(r.analysis["inputs"])).numpy(), r.analysis["output"],
                                   rtol=0, atol=1e-13)


def test_a_pytorch_resnet_onto_a_label_mesh():
    """A ResNet written in PyTorch (residual Linear layers and a Linear classifier) analysed with
    pdenet: the same loss and gradients, and the co-state/analysis tools apply."""
    torch.manual_seed(0)
    N, L, M, S = 10, 5, 3, 6
    layers = [ResidualBlock(torch.nn.Linear(N, N).double(), tau=0.2, activation="tanh") for _ in range(L)]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(N, M).double())
    x = torch.randn(S, N, dtype=torch.float64)
    labels = torch.randint(0, M, (S,))
    J = torch.nn.functional.cross_entropy(model(x), labels)
    J.backward()
    net = from_torch(model)
    Jp, grad, _, _ = net.loss_and_gradient(x.numpy(), labels.numpy())
    assert abs(Jp - J.item()) <= TOL * J.item()
    h = net.h
    for k, block in enumerate(layers):   # a = bias, B = -weight / h: chain rule back to torch's parameters
        assert rel(grad["a"][k], block.linear.bias.grad.numpy()) < TOL
        assert rel(-grad["b"][k] / h, block.linear.weight.grad.numpy()) < TOL
    assert rel(grad["W"] / h, model[-1].weight.grad.numpy()) < TOL
    assert rel(grad["mu"], model[-1].bias.grad.numpy()) < TOL
    from pdenet.network.analysis import spectrum
    assert len(spectrum(net.operator.b[0] * h)[0]) == N
