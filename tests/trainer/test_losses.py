"""Each SSL loss against a slow reference written from its paper's pseudocode, value and gradient.

The references loop explicitly over samples / pairs / matrix entries in float64 so that they share no
vectorised code path with the implementations.
"""

from __future__ import annotations

import math

import pytest
import torch

from topo.trainer.losses import (
    DINOLoss,
    barlow_twins_loss,
    byol_loss,
    infonce_loss,
    nt_xent_loss,
    symmetric_infonce_loss,
)

torch.set_num_threads(1)

BATCH_SIZES = [2, 3, 8]
DIM = 5


def _leaves(*shapes: tuple[int, ...], seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_(True) for s in shapes]


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.sqrt(sum(x * x for x in v))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _assert_same_value_and_grad(loss: torch.Tensor, ref: torch.Tensor, inputs: list[torch.Tensor]) -> None:
    torch.testing.assert_close(loss, ref, atol=1e-10, rtol=1e-8)
    got = torch.autograd.grad(loss, inputs, retain_graph=True)
    want = torch.autograd.grad(ref, inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-8)


# --- NT-Xent (SimCLR, Algorithm 1) ---------------------------------------------------------------------


def _nt_xent_reference(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    # Algorithm 1 interleaves the views: z_{2k-1} = view 1 of sample k, z_{2k} = view 2 (0-based here).
    n = z1.shape[0]
    z = []
    for k in range(n):
        z.append(_unit(z1[k]))
        z.append(_unit(z2[k]))
    s = [[_dot(z[i], z[j]) for j in range(2 * n)] for i in range(2 * n)]

    def ell(i: int, j: int) -> torch.Tensor:
        denom = sum(torch.exp(s[i][k] / tau) for k in range(2 * n) if k != i)
        return -torch.log(torch.exp(s[i][j] / tau) / denom)

    return sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(n)) / (2 * n)


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("tau", [0.07, 0.1, 0.5])
def test_nt_xent_matches_reference(batch: int, tau: float) -> None:
    z1, z2 = _leaves((batch, DIM), (batch, DIM))
    _assert_same_value_and_grad(nt_xent_loss(z1, z2, tau), _nt_xent_reference(z1, z2, tau), [z1, z2])


def test_nt_xent_is_scale_invariant_and_rewards_alignment() -> None:
    z1, z2 = _leaves((6, DIM), (6, DIM))
    z1, z2 = z1.detach(), z2.detach()
    torch.testing.assert_close(nt_xent_loss(3 * z1, 0.5 * z2), nt_xent_loss(z1, z2))
    assert nt_xent_loss(z1, z1 + 0.01 * z2) < nt_xent_loss(z1, z2)


# --- InfoNCE (MoCo v3, Algorithm 1) --------------------------------------------------------------------


def _ctr_reference(q: torch.Tensor, k: torch.Tensor, tau: float) -> torch.Tensor:
    n = q.shape[0]
    qn = [_unit(q[i]) for i in range(n)]
    kn = [_unit(k[i]) for i in range(n)]
    total = 0
    for i in range(n):
        logits = [_dot(qn[i], kn[j]) / tau for j in range(n)]
        total = total - torch.log(torch.exp(logits[i]) / sum(torch.exp(x) for x in logits))
    return 2 * tau * total / n


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("tau", [0.1, 0.2, 1.0])
def test_infonce_matches_reference(batch: int, tau: float) -> None:
    q, k = _leaves((batch, DIM), (batch, DIM), seed=1)
    _assert_same_value_and_grad(infonce_loss(q, k, tau), _ctr_reference(q, k, tau), [q, k])


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_symmetric_infonce_matches_reference(batch: int) -> None:
    q1, q2, k1, k2 = _leaves(*[(batch, DIM)] * 4, seed=2)
    ref = _ctr_reference(q1, k2, 0.2) + _ctr_reference(q2, k1, 0.2)
    _assert_same_value_and_grad(symmetric_infonce_loss(q1, q2, k1, k2, 0.2), ref, [q1, q2, k1, k2])


# --- BYOL (Eq. 2) --------------------------------------------------------------------------------------


def _byol_reference(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    z = z.detach()  # sg(z')
    total = 0
    for i in range(p.shape[0]):
        diff = _unit(p[i]) - _unit(z[i])
        total = total + _dot(diff, diff)
    return total / p.shape[0]


@pytest.mark.parametrize("batch", BATCH_SIZES)
def test_byol_matches_reference_and_stops_target_gradient(batch: int) -> None:
    p, z = _leaves((batch, DIM), (batch, DIM), seed=3)
    loss = byol_loss(p, z)
    torch.testing.assert_close(loss, _byol_reference(p, z), atol=1e-10, rtol=1e-8)
    (grad_p,) = torch.autograd.grad(loss, [p], retain_graph=True)
    torch.testing.assert_close(grad_p, torch.autograd.grad(_byol_reference(p, z), [p])[0])
    loss.backward()
    assert z.grad is None
    assert 0.0 <= float(loss.detach()) <= 4.0


# --- DINO (Algorithm 1) --------------------------------------------------------------------------------


def _dino_reference(
    s1: torch.Tensor,
    s2: torch.Tensor,
    t1: torch.Tensor,
    t2: torch.Tensor,
    c: torch.Tensor,
    tps: float,
    tpt: float,
) -> torch.Tensor:
    def softmax(row: torch.Tensor) -> list[torch.Tensor]:
        e = [torch.exp(x) for x in row]
        total = sum(e)
        return [x / total for x in e]

    def h(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        loss = 0
        for b in range(t.shape[0]):
            pt = softmax([(t[b, k] - c[k]) / tpt for k in range(t.shape[1])])
            ps = softmax([s[b, k] / tps for k in range(s.shape[1])])
            loss = loss - sum(pt[k] * torch.log(ps[k]) for k in range(t.shape[1]))
        return loss / t.shape[0]

    return h(t1, s2) / 2 + h(t2, s1) / 2


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize(("student_temp", "teacher_temp"), [(0.1, 0.04), (0.1, 0.07), (0.5, 0.2)])
def test_dino_matches_reference_and_updates_centre(batch: int, student_temp: float, teacher_temp: float) -> None:
    k = 6
    s1, s2, t1, t2 = _leaves(*[(batch, k)] * 4, seed=4)
    loss_fn = DINOLoss(k, student_temp=student_temp, center_momentum=0.9).double()
    centre = torch.randn(1, k, dtype=torch.float64)
    loss_fn.center.copy_(centre)
    loss = loss_fn([s1, s2], [t1, t2], teacher_temp=teacher_temp)
    ref = _dino_reference(s1, s2, t1, t2, centre[0], student_temp, teacher_temp)
    _assert_same_value_and_grad(loss, ref, [s1, s2])
    # C <- m C + (1 - m) mean(cat([t1, t2]))
    expected = []
    for j in range(k):
        batch_mean = sum(float(t[b, j].detach()) for t in (t1, t2) for b in range(batch)) / (2 * batch)
        expected.append(0.9 * float(centre[0, j]) + 0.1 * batch_mean)
    torch.testing.assert_close(loss_fn.center[0], torch.tensor(expected, dtype=torch.float64))
    loss.backward()
    assert t1.grad is None and t2.grad is None


def test_dino_centre_frozen_in_eval_mode() -> None:
    loss_fn = DINOLoss(4).eval()
    loss_fn([torch.randn(3, 4), torch.randn(3, 4)], [torch.randn(3, 4), torch.randn(3, 4)], teacher_temp=0.04)
    assert torch.equal(loss_fn.center, torch.zeros(1, 4))


# --- Barlow Twins (Eq. 1-2) ----------------------------------------------------------------------------


def _barlow_reference(za: torch.Tensor, zb: torch.Tensor, lambd: float) -> torch.Tensor:
    n, d = za.shape
    ca = [[za[b, i] - sum(za[x, i] for x in range(n)) / n for i in range(d)] for b in range(n)]
    cb = [[zb[b, i] - sum(zb[x, i] for x in range(n)) / n for i in range(d)] for b in range(n)]
    loss = 0
    for i in range(d):
        for j in range(d):
            num = sum(ca[b][i] * cb[b][j] for b in range(n))
            norm_i = torch.sqrt(sum(ca[b][i] ** 2 for b in range(n)))
            norm_j = torch.sqrt(sum(cb[b][j] ** 2 for b in range(n)))
            den = norm_i * norm_j
            c_ij = num / den
            loss = loss + ((1 - c_ij) ** 2 if i == j else lambd * c_ij**2)
    return loss


@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("lambd", [0.0, 0.0051, 0.5])
def test_barlow_twins_matches_reference(batch: int, lambd: float) -> None:
    za, zb = _leaves((batch, 4), (batch, 4), seed=5)
    # eps is a numerical guard absent from Eq. (2); make it negligible to compare with the exact formula.
    loss = barlow_twins_loss(za, zb, lambd=lambd, eps=1e-14)
    _assert_same_value_and_grad(loss, _barlow_reference(za, zb, lambd), [za, zb])


def test_barlow_twins_identical_views_have_identity_correlation() -> None:
    z = torch.randn(32, 6, dtype=torch.float64)
    assert float(barlow_twins_loss(z, z, lambd=0.0)) < 1e-6
    assert float(barlow_twins_loss(z, z, lambd=1.0)) > 1e-3  # random dimensions still correlate a little


# --- argument checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda a, b: nt_xent_loss(a, b, temperature=0.0), "temperature"),
        (lambda a, b: nt_xent_loss(a, b, temperature=-1.0), "temperature"),
        (lambda a, b: nt_xent_loss(a, b[:3]), "shape"),
        (lambda a, b: nt_xent_loss(a[0], b[0]), "shape"),
        (lambda a, b: infonce_loss(a, b, temperature=0.0), "temperature"),
        (lambda a, b: infonce_loss(a, b[:, :2]), "shape"),
        (lambda a, b: byol_loss(a, b[:2]), "shape"),
        (lambda a, b: barlow_twins_loss(a, b, lambd=-0.1), "lambd"),
        (lambda a, b: barlow_twins_loss(a, b, eps=0.0), "eps"),
        (lambda a, b: barlow_twins_loss(a[:1], b[:1]), "at least 2"),
        (lambda a, b: barlow_twins_loss(a, b.T), "shape"),
    ],
)
def test_bad_loss_arguments_raise(call, match: str) -> None:
    a, b = torch.randn(4, DIM), torch.randn(4, DIM)
    with pytest.raises(ValueError, match=match):
        call(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"out_dim": 0}, "out_dim"),
        ({"out_dim": 4, "student_temp": 0.0}, "student_temp"),
        ({"out_dim": 4, "center_momentum": 1.5}, r"center_momentum must be in \[0, 1\]"),
    ],
)
def test_bad_dino_constructor_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DINOLoss(**kwargs)


def test_bad_dino_forward_arguments_raise() -> None:
    loss_fn = DINOLoss(4)
    s, t = [torch.randn(2, 4), torch.randn(2, 4)], [torch.randn(2, 4), torch.randn(2, 4)]
    with pytest.raises(ValueError, match="teacher_temp"):
        loss_fn(s, t, teacher_temp=0.0)
    with pytest.raises(ValueError, match="student views"):
        loss_fn(s[:1], t[:1], teacher_temp=0.04)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        loss_fn([torch.randn(2, 5)] * 2, [torch.randn(2, 5)] * 2, teacher_temp=0.04)
    assert math.isfinite(float(loss_fn(s, t, teacher_temp=0.04)))
