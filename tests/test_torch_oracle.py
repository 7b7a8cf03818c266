"""The explicit-Euler dense network is a ResNet: its gradient equals PyTorch autograd's."""
import numpy as np
import pytest

from netfactory import make_net

import os

try:
    import torch
except ImportError:  # CI installs the test extra: there a missing oracle is a failure, not a skip
    if os.environ.get("CI"):
        raise
    pytest.skip("PyTorch is the oracle (pip install -e .[test])", allow_module_level=True)


def resnet_loss(params, f0, target, tau, h, activation, steps, intervals, loss):
    act = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
           "elu": torch.nn.functional.elu}[activation]
    z = torch.tensor(f0)
    for n in range(steps):
        k = n * intervals // steps
        z = z + tau * act(params["a"][k] - h * z @ params["b"][k].T)   # z_{l+1} = z_l + tau sigma(a_l - B_l z_l)
    if loss == "l2":
        return 0.5 * h * torch.sum((z - torch.tensor(target)) ** 2) / z.shape[0]
    logits = h * z @ params["W"].T + params["mu"]
    return torch.nn.functional.cross_entropy(logits, torch.tensor(target), reduction="mean")


@pytest.mark.parametrize("loss", ["l2", "softmax"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "elu"])
def test_euler_dense_gradient_equals_autograd(loss, activation):
    rng = np.random.default_rng(2024)
    steps, intervals = 8, 4
    net, f0, target = make_net(rng, stepper="euler", kernel="dense", loss=loss, activation=activation,
                               cells=(16,), steps=steps, intervals=intervals, samples=5, t_end=1.0)
    J, grad, _, _ = net.loss_and_gradient(f0, target)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    Jt = resnet_loss(tp, f0, target, net.schedule.dt, net.h, activation, steps, intervals, loss)
    Jt.backward()
    assert J == pytest.approx(Jt.item(), rel=1e-13)
    for k, v in tp.items():
        ref = v.grad.numpy()
        err = np.linalg.norm(grad[k] - ref) / np.linalg.norm(ref)
        assert err < 1e-10, (k, err)
