"""Spec: LAMB and LARS (bench/runner/optimizers.py) take the steps of their papers; every expected value is
worked out by hand in the comments."""
import math

import pytest
import torch

from bench.runner.optimizers import Lamb, Lars


def one_step(opt_cls, w, g, steps=1, **kw):
    p = torch.nn.Parameter(torch.tensor(w, dtype=torch.float64))
    opt = opt_cls([p], **kw)
    for _ in range(steps):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach()


def test_lamb_first_step_is_adam_direction_times_the_trust_ratio():
    # w = (3, 4), ||w|| = 5; g = (1, -1). Step 1: m_hat = g, v_hat = g^2, so r = g / (|g| + eps) ~ (1, -1).
    # The trust ratio ||w|| / ||r|| makes the step lr * 5 * r / ||r|| = 0.1 * 5 * (1, -1) / sqrt(2), eps cancelling.
    w = one_step(Lamb, [3.0, 4.0], [1.0, -1.0], lr=0.1)
    d = 0.5 / math.sqrt(2)
    assert w.tolist() == pytest.approx([3.0 - d, 4.0 + d], abs=1e-12)


def test_lamb_weight_decay_enters_before_the_trust_ratio():
    # u = r + 0.1 w = (1 + 0.3, -1 + 0.4) = (1.3, -0.6) up to eps; ||u|| = sqrt(2.05); step 0.1 * 5 * u / ||u||.
    w = one_step(Lamb, [3.0, 4.0], [1.0, -1.0], lr=0.1, weight_decay=0.1)
    s = 0.5 / math.sqrt(2.05)
    assert w.tolist() == pytest.approx([3.0 - 1.3 * s, 4.0 + 0.6 * s], abs=1e-6)


def test_lamb_zero_weights_take_the_plain_direction():
    # ||w|| = 0: the trust ratio is 1, the step is lr * r = 0.1 * (1, -1) (up to eps).
    assert one_step(Lamb, [0.0, 0.0], [2.0, -2.0], lr=0.1).tolist() == pytest.approx([-0.1, 0.1], abs=1e-6)


def test_lars_two_steps_with_momentum():
    # w = [[3, 4]] (||w|| = 5), g = [[0.6, 0.8]] (||g|| = 1), eta 0.001, lr 1, momentum 0.9.
    # Step 1: local = 0.001 * 5 / 1 = 0.005; v = 0.005 * g = (0.003, 0.004); w1 = (2.997, 3.996), ||w1|| = 4.995.
    # Step 2: local = 0.004995; v = 0.9 * (0.003, 0.004) + 0.004995 * g = (0.005697, 0.007596).
    w = one_step(Lars, [[3.0, 4.0]], [[0.6, 0.8]], steps=2, lr=1.0, momentum=0.9)
    assert w.tolist()[0] == pytest.approx([2.997 - 0.005697, 3.996 - 0.007596], abs=1e-12)


def test_lars_weight_decay():
    # wd 0.01: local = 0.001 * 5 / (1 + 0.01 * 5) = 0.005 / 1.05; step = local * (g + 0.01 w) = local * (0.63, 0.84).
    w = one_step(Lars, [[3.0, 4.0]], [[0.6, 0.8]], lr=1.0, momentum=0.9, weight_decay=0.01)
    local = 0.005 / 1.05
    assert w.tolist()[0] == pytest.approx([3.0 - 0.63 * local, 4.0 - 0.84 * local], abs=1e-12)


def test_lars_leaves_biases_to_plain_momentum_sgd():
    # A tensor of one dimension: v = lr * g = 0.5 * 0.5; no adaptation, no decay.
    assert one_step(Lars, [1.0], [0.5], lr=0.5, weight_decay=0.1).tolist() == pytest.approx([0.75])


@pytest.mark.parametrize("cls,kw", [(Lamb, {"lr": -1}), (Lamb, {"betas": (1.0, 0.9)}), (Lars, {"momentum": 1.5}),
                                    (Lars, {"trust_coefficient": 0})])
def test_bad_hyper_parameters(cls, kw):
    with pytest.raises(ValueError):
        cls([torch.nn.Parameter(torch.zeros(2))], **kw)
