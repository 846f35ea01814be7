"""CrossEntropyLoss's weight / ignore_index / label_smoothing / K-dimensional
targets, NLLLoss and BCEWithLogitsLoss: plain NumPy transcriptions of PyTorch's
documented formulas, finite differences, PyTorch parity and errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ferroconv import nn
from test_nn_loss import finite_difference


def raises(exc, *fragments):
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


def cross_entropy_reference(logits, labels, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """torch.nn.CrossEntropyLoss's documented formula, one target at a time:
    l_n = (1 - s) * (-w[y_n] log p_n[y_n]) + s / C * sum_c (-w[c] log p_n[c]),
    ignored targets contribute 0; "mean" divides by sum of w[y_n] over counted n."""
    classes = logits.shape[1]
    rows = np.moveaxis(logits, 1, -1).reshape(-1, classes)
    targets = labels.reshape(-1)
    w = np.ones(classes) if weight is None else weight
    total, denominator = 0.0, 0.0
    for z, y in zip(rows, targets):
        if y == ignore_index:
            continue
        log_p = z - np.log(np.sum(np.exp(z)))
        total += (1 - smoothing) * (-w[y] * log_p[y]) + smoothing / classes * np.sum(-w * log_p)
        denominator += w[y]
    return total / denominator if reduction == "mean" else total


CE_CASES = [
    dict(),
    dict(weight=np.array([0.2, 1.0, 3.0, 0.7])),
    dict(ignore_index=2),
    dict(weight=np.array([0.2, 1.0, 3.0, 0.7]), ignore_index=1, reduction="sum"),
    dict(label_smoothing=0.1),
    dict(weight=np.array([0.2, 1.0, 3.0, 0.7]), ignore_index=0, label_smoothing=0.3),
    dict(weight=np.array([0.5, 2.0, 1.0, 1.5]), label_smoothing=0.2, reduction="sum"),
]


@pytest.mark.parametrize("options", CE_CASES, ids=str)
@pytest.mark.parametrize("shape", [(7, 4), (3, 4, 2, 3)])
def test_cross_entropy_options_match_the_formula_and_finite_differences(options, shape):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal(shape) * 2
    labels = rng.integers(0, 4, (shape[0],) + shape[2:])
    loss = nn.CrossEntropyLoss(**options)
    smoothing = options.get("label_smoothing", 0.0)
    reference_options = {k: v for k, v in options.items() if k != "label_smoothing"}
    expected = cross_entropy_reference(logits, labels, smoothing=smoothing, **reference_options)
    assert loss(logits, labels) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), finite_difference(loss, logits, labels), rtol=1e-6, atol=1e-9)


def test_cross_entropy_defaults_keep_the_plain_mean():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = nn.CrossEntropyLoss()
    assert loss(logits, labels) == pytest.approx(-np.mean(np.log(probs[np.arange(5), labels])), rel=1e-13)
    np.testing.assert_allclose(loss.backward(), (probs - np.eye(3)[labels]) / 5, rtol=1e-12, atol=1e-15)


def test_all_targets_ignored_gives_nan_mean_and_zero_gradient_as_pytorch():
    loss = nn.CrossEntropyLoss(ignore_index=-1)
    assert np.isnan(loss(np.zeros((2, 3)), np.array([-1, -1])))
    np.testing.assert_array_equal(loss.backward(), 0)
    assert nn.CrossEntropyLoss(ignore_index=-1, reduction="sum")(np.zeros((2, 3)), np.array([-1, -1])) == 0


@pytest.mark.parametrize("options", [dict(), dict(weight=np.array([2.0, 0.5, 1.0])), dict(ignore_index=0),
                                     dict(weight=np.array([2.0, 0.5, 1.0]), reduction="sum", ignore_index=2)],
                         ids=str)
def test_nll_loss_matches_the_formula_and_finite_differences(options):
    rng = np.random.default_rng(2)
    log_probs = np.log(rng.dirichlet(np.ones(3), size=(6, 2))).transpose(0, 2, 1)  # (N, C, d1)
    labels = rng.integers(0, 3, (6, 2))
    loss = nn.NLLLoss(**options)
    w = options.get("weight", np.ones(3))
    counted = labels != options.get("ignore_index", -100)
    picked = np.take_along_axis(log_probs, labels[:, None], axis=1)[:, 0]
    total = -np.sum((w[labels] * picked)[counted])
    expected = total / np.sum(w[labels][counted]) if options.get("reduction", "mean") == "mean" else total
    assert loss(log_probs, labels) == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(loss.backward(), finite_difference(loss, log_probs, labels), rtol=1e-6, atol=1e-9)


def test_log_softmax_then_nll_is_cross_entropy():
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    weight = np.array([1.0, 2.0, 0.5, 1.5])
    log_softmax, nll, ce = nn.LogSoftmax(1), nn.NLLLoss(weight=weight), nn.CrossEntropyLoss(weight=weight)
    assert nll(log_softmax(logits), labels) == pytest.approx(ce(logits, labels), rel=1e-13)
    np.testing.assert_allclose(log_softmax.backward(nll.backward()), ce.backward(), rtol=1e-12, atol=1e-15)


def bce_reference(x, y, weight=1.0, pos_weight=1.0, reduction="mean"):
    """The definition with sigmoid in float64 (moderate logits only)."""
    sigmoid = 1 / (1 + np.exp(-x))
    losses = -weight * (pos_weight * y * np.log(sigmoid) + (1 - y) * np.log(1 - sigmoid))
    return losses.mean() if reduction == "mean" else losses.sum()


@pytest.mark.parametrize("options", [
    dict(), dict(reduction="sum"), dict(weight=np.array([[0.5], [1.0], [2.0], [1.5], [0.1]])),
    dict(pos_weight=np.array([1.0, 3.0, 0.5])),
    dict(weight=np.array([2.0, 1.0, 0.5]), pos_weight=np.array([2.0, 0.3, 1.0]), reduction="sum"),
], ids=str)
def test_bce_with_logits_matches_the_definition_and_finite_differences(options):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((5, 3)) * 3, rng.random((5, 3))
    loss = nn.BCEWithLogitsLoss(**options)
    expected = bce_reference(x, y, options.get("weight", 1.0), options.get("pos_weight", 1.0),
                             options.get("reduction", "mean"))
    assert loss(x, y) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), finite_difference(loss, x, y), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_for_huge_logits(dtype):
    x = np.array([1e4, -1e4, 50.0, -50.0, 0.0], dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype)
    loss = nn.BCEWithLogitsLoss(reduction="sum")
    value = loss(x, y)
    # exact: 0 + 0 + softplus(50) + softplus(50) + log 2
    assert value == pytest.approx(2 * (50 + np.log1p(np.exp(-50.0))) + np.log(2), rel=1e-6)
    grad = loss.backward()
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, [0.0, 0.0, 1.0, -1.0, -0.5], atol=1e-6)


def test_losses_match_torch():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 5, 3)) * 2
    labels = rng.integers(0, 5, (6, 3))
    labels[0, 0] = labels[3, 2] = -1
    weight = rng.random(5) + 0.2
    for options in [dict(), dict(weight=weight), dict(ignore_index=-1, label_smoothing=0.15),
                    dict(weight=weight, ignore_index=-1, label_smoothing=0.25),
                    dict(weight=weight, ignore_index=-1, label_smoothing=0.4, reduction="sum")]:
        if "ignore_index" not in options:
            target = np.where(labels < 0, 0, labels)
        else:
            target = labels
        loss = nn.CrossEntropyLoss(**options)
        value = loss(logits, target)
        xt = torch.tensor(logits, requires_grad=True)
        torch_options = {k: torch.tensor(v) if k == "weight" else v for k, v in options.items()}
        expected = functional.cross_entropy(xt, torch.tensor(target), **torch_options)
        expected.backward()
        assert value == pytest.approx(expected.item(), rel=1e-12), options
        np.testing.assert_allclose(loss.backward(), xt.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=str(options))
        if options.get("label_smoothing", 0.0) == 0.0:
            nll = nn.NLLLoss(**options)
            log_probs = functional.log_softmax(torch.tensor(logits), 1)
            assert nll(log_probs.numpy(), target) == pytest.approx(
                functional.nll_loss(log_probs, torch.tensor(target), **torch_options).item(), rel=1e-12)
    x, y = rng.standard_normal((4, 3)) * 4, rng.random((4, 3))
    pos_weight, element_weight = rng.random(3) + 0.5, rng.random((4, 1))
    loss = nn.BCEWithLogitsLoss(weight=element_weight, pos_weight=pos_weight)
    xt = torch.tensor(x, requires_grad=True)
    expected = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(element_weight),
                                          pos_weight=torch.tensor(pos_weight))(xt, torch.tensor(y))
    expected.backward()
    assert loss(x, y) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), xt.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_16_bit_logits_give_16_bit_gradients(dtype_name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = np.dtype(getattr(ml_dtypes, dtype_name)) if dtype_name == "bfloat16" else np.dtype(dtype_name)
    rng = np.random.default_rng(6)
    logits, labels = rng.standard_normal((4, 3)), rng.integers(0, 3, 4)
    for make, target in [(lambda: nn.CrossEntropyLoss(label_smoothing=0.1, weight=np.array([1.0, 2.0, 3.0])),
                          labels), (nn.NLLLoss, labels), (nn.BCEWithLogitsLoss, rng.random((4, 3)))]:
        loss, reference = make(), make()
        value = loss(logits.astype(dtype), target)
        grad = loss.backward()
        expected = reference(logits.astype(dtype).astype(np.float64), target)
        assert grad.dtype == dtype and value == pytest.approx(expected, rel=1e-5)
        np.testing.assert_allclose(grad.astype(np.float64), reference.backward(), rtol=0.02, atol=1e-3)


def test_loss_errors():
    with raises(ValueError, "CrossEntropyLoss", "label_smoothing", "[0, 1]", "1.5"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with raises(ValueError, "NLLLoss", "weight", "1-D"):
        nn.NLLLoss(weight=np.ones((2, 2)))
    with raises(TypeError, "CrossEntropyLoss", "ignore_index", "int"):
        nn.CrossEntropyLoss(ignore_index=1.5)
    with raises(ValueError, "CrossEntropyLoss", "weight has shape (3,)", "4 classes"):
        nn.CrossEntropyLoss(weight=np.ones(3))(np.zeros((2, 4)), np.array([0, 1]))
    with raises(ValueError, "CrossEntropyLoss", "[0, 4)", "ignore_index=-1", "[-2, 1]"):
        nn.CrossEntropyLoss(ignore_index=-1)(np.zeros((3, 4)), np.array([-1, -2, 1]))
    with raises(ValueError, "CrossEntropyLoss", "(2, 5)", "(2, 4, 5)", "(2, 4)"):
        nn.CrossEntropyLoss()(np.zeros((2, 4, 5)), np.zeros((2, 4), np.int64))
    with raises(ValueError, "NLLLoss", "(N, C)", "(4,)"):
        nn.NLLLoss()(np.zeros(4), np.array([1]))
    with raises(ValueError, "BCEWithLogitsLoss", "target has shape (3, 1)", "(3,)"):
        nn.BCEWithLogitsLoss()(np.zeros(3), np.zeros((3, 1)))
    with raises(ValueError, "BCEWithLogitsLoss", "pos_weight of shape (2,)", "(3, 4)"):
        nn.BCEWithLogitsLoss(pos_weight=np.ones(2))(np.zeros((3, 4)), np.zeros((3, 4)))
    with raises(TypeError, "BCEWithLogitsLoss", "logits", "int64"):
        nn.BCEWithLogitsLoss()(np.zeros(3, np.int64), np.zeros(3))
    for loss in (nn.NLLLoss(), nn.BCEWithLogitsLoss()):
        with raises(ValueError, type(loss).__name__, "backward called before forward"):
            loss.backward()
