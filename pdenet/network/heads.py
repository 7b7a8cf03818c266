"""Output layer O_T = int_Y W(., z) f(z, T) dz + mu and the terminal losses.

kinds
  identity  O = f(T) (the paper's regression set-up, r(T) = f(T) - target)
  field     O(y) = int W(y, z) f(z, T) dz + mu(y), W (N, N), mu (N,)
  classes   O_c = int W_c(z) f(z, T) dz + mu_c, W (M, N), mu (M,)
losses (averaged over the S samples)
  l2        1/2 sum |h(O) - target|^2, with dy-weights for field outputs;
            h = identity or the logistic function (``transform``)
  logistic  binary cross entropy of sigmoid(O) against 0/1 targets
  softmax   cross entropy of softmax(O) against integer labels
"""
import numpy as np
from scipy.special import expit, log_softmax, softmax

KINDS = ("identity", "field", "classes")
LOSSES = ("l2", "logistic", "softmax")


class Head:
    def __init__(self, kind, loss, h, N, W=None, mu=None, transform="none"):
        if kind not in KINDS:
            raise ValueError(f"unknown output kind {kind!r}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}")
        self.kind, self.loss_name, self.h, self.N, self.transform = kind, loss, h, N, transform
        self.W = None if W is None else np.ascontiguousarray(W, dtype=float)
        self.mu = None if mu is None else np.ascontiguousarray(mu, dtype=float)
        if kind != "identity" and (self.W is None or self.mu is None or self.W.shape[1] != N
                                   or self.mu.shape != (self.W.shape[0],)):
            raise ValueError(f"output W must be (M, {N}) and mu (M,)")
        # dy-weights of the l2 sum: integrals over Y for field outputs, plain sums for classes
        self.weight = 1.0 if kind == "classes" else h

    @property
    def params(self):
        return {} if self.kind == "identity" else {"W": self.W, "mu": self.mu}

    @property
    def outputs(self):
        return self.N if self.kind == "identity" else self.W.shape[0]

    def output(self, fT):
        if self.kind == "identity":
            return fT
        return self.h * (fT @ self.W.T) + self.mu

    @property
    def metric_names(self):
        """Names of the sample-mean metrics :meth:`loss` returns."""
        return () if self.loss_name == "l2" else ("accuracy",)

    def loss(self, fT, target, grad=None, samples=None):
        """Loss J, dJ/df(T) and metrics; adds dJ/dW, dJ/dmu into ``grad`` when given.

        ``samples``: the S of the 1/S average (default: the rows of ``fT``). A rank
        holding a block of the samples passes the global S, so that its J and
        gradients are its exact share of the global sums (metrics stay means over
        the rows given).
        """
        S = fT.shape[0] if samples is None else samples
        O = self.output(fT)
        metrics = {}
        if self.loss_name == "l2":
            C = expit(O) if self.transform == "logistic" else O
            diff = C - target
            J = 0.5 * self.weight * np.sum(diff * diff) / S
            dO = (self.weight / S) * diff
            if self.transform == "logistic":
                dO = dO * C * (1.0 - C)
        elif self.loss_name == "logistic":
            # log(1 + e^O) - t O, stable
            J = self.weight * np.sum(np.logaddexp(0.0, O) - target * O) / S
            dO = (self.weight / S) * (expit(O) - target)
            metrics["accuracy"] = float(np.mean((O > 0) == (target > 0.5)))
        else:
            labels = np.asarray(target, dtype=int)
            logp = log_softmax(O, axis=1)
            J = -np.sum(logp[np.arange(O.shape[0]), labels]) / S
            dO = softmax(O, axis=1)
            dO[np.arange(O.shape[0]), labels] -= 1.0
            dO /= S
            metrics["accuracy"] = float(np.mean(np.argmax(O, axis=1) == labels))
        if self.kind == "identity":
            dfT = dO
        else:
            dfT = self.h * (dO @ self.W)
            if grad is not None:
                grad["W"] += self.h * (dO.T @ fT)
                grad["mu"] += dO.sum(axis=0)
        return float(J), np.ascontiguousarray(dfT), metrics
