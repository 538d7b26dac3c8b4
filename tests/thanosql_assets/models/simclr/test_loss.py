"""NT-Xent against a direct, loop-by-loop computation of the formula in the SimCLR paper."""

import math

import pytest
import torch
import torch.nn.functional as F

from thanosql_assets.models.simclr.loss import NTXentLoss


def nt_xent_by_the_formula(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    views = [F.normalize(v, dim=0) for v in torch.cat([z1, z2]).double()]
    n = len(z1)
    total = 0.0
    for i, anchor in enumerate(views):
        partner = (i + n) % (2 * n)
        denominator = sum(math.exp(float(anchor @ other) / tau) for k, other in enumerate(views) if k != i)
        total += -math.log(math.exp(float(anchor @ views[partner]) / tau) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize(("n", "dim", "tau"), [(2, 3, 0.5), (5, 8, 0.2), (16, 32, 0.1)])
def test_matches_the_formula(n, dim, tau):
    generator = torch.Generator().manual_seed(n)
    z1, z2 = torch.randn(n, dim, generator=generator), torch.randn(n, dim, generator=generator)
    assert NTXentLoss(tau)(z1, z2).item() == pytest.approx(nt_xent_by_the_formula(z1, z2, tau), rel=1e-5)


def test_is_low_when_views_agree_and_others_differ():
    z = torch.eye(8) * 5
    aligned = NTXentLoss(0.2)(z, z.clone()).item()
    shuffled = NTXentLoss(0.2)(z, z.roll(1, dims=0)).item()
    assert aligned < 0.1  # -log(e^5 / (e^5 + 14)): partner at cosine 1, 14 negatives at 0
    assert shuffled > 2


def test_is_invariant_to_the_length_of_the_vectors():
    z1, z2 = torch.randn(4, 6), torch.randn(4, 6)
    loss = NTXentLoss(0.3)
    assert loss(z1, z2).item() == pytest.approx(loss(z1 * 7, z2 * 0.1).item(), rel=1e-5)


def test_gradients_flow_to_both_views():
    z1, z2 = torch.randn(4, 6, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    NTXentLoss(0.2)(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_temperature_must_be_positive():
    with pytest.raises(ValueError):
        NTXentLoss(0.0)
