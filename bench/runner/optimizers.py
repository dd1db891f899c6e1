"""Layer-wise adaptive optimizers for large global batches: LAMB and LARS.

No well-kept package that installs here provides them without torchvision (timm's ``timm.optim`` imports
torchvision, whose PyPI wheels do not load with the CPU build of torch), so they are written out here, each
step as in its paper, and tested against updates computed by hand (tests/test_optimizers.py).

* LAMB: You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes", ICLR 2020
  (arXiv:1904.00962), Algorithm 2. Per parameter tensor: Adam's bias-corrected moments give the direction
  ``r = m_hat / (sqrt(v_hat) + eps)``; with weight decay ``u = r + wd * w``; the step is scaled by the trust
  ratio ``||w|| / ||u||`` (1 where either norm is 0): ``w -= lr * ||w|| / ||u|| * u``.
* LARS: You, Gitman and Ginsburg, "Large Batch Training of Convolutional Networks", arXiv:1708.03888,
  Algorithm 1. Per parameter tensor: ``local_lr = eta * ||w|| / (||g|| + wd * ||w||)`` (1 where either norm
  is 0); ``v = momentum * v + lr * local_lr * (g + wd * w)``; ``w -= v``. Biases and BatchNorm parameters
  (tensors of one dimension) take plain momentum SGD without weight decay, as in the MLPerf ResNet-50 LARS
  reference.
"""
from __future__ import annotations

import torch
from torch.optim import Optimizer


def _trust(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, or 1 where either is 0 (a fresh zero tensor, a zero update)."""
    ok = (numerator > 0) & (denominator > 0)
    return torch.where(ok, numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny),
                       torch.ones_like(numerator))


def _loss(closure):
    """The loss of ``closure`` (re-evaluating the model, gradients on), as torch's optimizers take it; None
    without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class Lamb(Optimizer):
    """LAMB (You et al. 2020, Algorithm 2). ``lr``: the global learning rate; ``betas``, ``eps``: Adam's;
    ``weight_decay``: decoupled, added to the direction before the trust ratio. Raises ValueError for a
    negative hyper-parameter."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0):
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Lamb: bad hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = _loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                update = (m / (1 - beta1 ** t)) / ((v / (1 - beta2 ** t)).sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                ratio = _trust(p.norm(), update.norm())
                p.sub_(group["lr"] * ratio * update)
        return loss


class Lars(Optimizer):
    """LARS (You, Gitman and Ginsburg 2017, Algorithm 1) with momentum. ``lr``: the global learning rate;
    ``trust_coefficient``: eta of the paper; tensors of one dimension (biases, BatchNorm) are not adapted and
    not decayed. Raises ValueError for a negative hyper-parameter."""

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 0.001):
        if lr <= 0 or not 0.0 <= momentum < 1.0 or weight_decay < 0 or trust_coefficient <= 0:
            raise ValueError(f"Lars: bad hyper-parameters lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay}, trust_coefficient={trust_coefficient}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      trust_coefficient=trust_coefficient))

    @torch.no_grad()
    def step(self, closure=None):
        loss = _loss(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if p.ndim > 1:
                    wd = group["weight_decay"]
                    w_norm, g_norm = p.norm(), grad.norm()
                    local = _trust(group["trust_coefficient"] * w_norm, g_norm + wd * w_norm)
                    grad = (grad + wd * p) * local if wd else grad * local
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(grad, alpha=group["lr"])
                p.sub_(buf)
        return loss
