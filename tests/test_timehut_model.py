"""TimeHUT's encoder, views, losses and evaluation against hand computations on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightsweep.models.timehut.encoder import SamePadConv, TSEncoder, encode_pair
from lightsweep.models.timehut.evaluation import evaluate, make_classifier
from lightsweep.models.timehut.losses import LossSettings, amc, hierarchical_loss, instance_loss, temporal_loss
from lightsweep.models.timehut.views import overlapping_views


def nll_by_hand(vectors: list[list[float]], positive_of, scale: float) -> float:
    """Mean over anchors of -log softmax(dot/scale) at the positive, the anchor itself left out."""
    total = 0.0
    for a, anchor in enumerate(vectors):
        logits = {j: sum(p * q for p, q in zip(anchor, other)) / scale for j, other in enumerate(vectors) if j != a}
        log_norm = math.log(sum(math.exp(v) for v in logits.values()))
        total += log_norm - logits[positive_of(a)]
    return total / len(vectors)


def test_instance_loss_by_hand():
    z1 = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])  # B=2, T=1, C=2
    z2 = torch.tensor([[[0.5, 0.5]], [[1.0, -1.0]]])
    vectors = [[1.0, 0.0], [0.0, 2.0], [0.5, 0.5], [1.0, -1.0]]  # series 0, 1 (view 1) then (view 2)
    expected = nll_by_hand(vectors, lambda a: (a + 2) % 4, scale=0.5)
    assert instance_loss(z1, z2, tau=0.5).item() == pytest.approx(expected, rel=1e-6)
    assert instance_loss(z1[:1], z2[:1]).item() == 0.0  # one series: no negatives


def test_temporal_loss_by_hand_and_tau_placement():
    z1 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # B=1, T=2
    z2 = torch.tensor([[[0.8, 0.1], [-0.3, 0.9]]])
    vectors = [[1.0, 0.0], [0.0, 1.0], [0.8, 0.1], [-0.3, 0.9]]
    plain = nll_by_hand(vectors, lambda a: (a + 2) % 4, scale=1.0)
    assert temporal_loss(z1, z2, tau=0.25, tau_after=True).item() == pytest.approx(plain / 0.25, rel=1e-6)
    sharpened = nll_by_hand(vectors, lambda a: (a + 2) % 4, scale=0.25)
    assert temporal_loss(z1, z2, tau=0.25, tau_after=False).item() == pytest.approx(sharpened, rel=1e-6)


def test_amc_by_hand():
    vectors = torch.tensor([[[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]]])  # S=1, N=4 (M=2)
    margin = 1.0
    unit = [v / np.linalg.norm(v) for v in vectors[0].numpy()]
    expected = 0.0
    for i in range(4):
        for j in range(4):
            if i == j:
                continue
            angle = math.acos(max(-1.0, min(1.0, float(unit[i] @ unit[j]))))
            expected += angle**2 if j == (i + 2) % 4 else max(0.0, margin - angle) ** 2
    assert amc(vectors, margin).item() == pytest.approx(expected / 25, rel=1e-5)


def test_hierarchy_levels_weights_and_last_level_quirk():
    torch.manual_seed(0)
    z1, z2 = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    settings = LossSettings(alpha=0.5, amc_instance=2.0, amc_temporal=3.0, amc_margin=0.4)
    pool = lambda z: F.max_pool1d(z.transpose(1, 2), 2).transpose(1, 2)  # noqa: E731
    expected, a, b = 0.0, z1, z2
    for _ in range(2):  # lengths 6, 3; then pooled to 1 for the last level
        inst = instance_loss(a, b, 0.7) + 2.0 * amc(torch.cat([a, b], 0).transpose(0, 1), 0.4)
        temp = temporal_loss(a, b, 0.7) + 3.0 * amc(torch.cat([a, b], 1), 0.4)
        expected += 0.5 * inst + 0.5 * temp
        a, b = pool(a), pool(b)
    last_amc = amc(torch.cat([a, b], 0).transpose(0, 1), 0.4)
    reference = (expected + 0.5 * (instance_loss(a, b, 0.7) + 3.0 * last_amc)) / 3
    assert hierarchical_loss(z1, z2, 0.7, settings).item() == pytest.approx(reference.item(), rel=1e-5)
    fixed = LossSettings(alpha=0.5, amc_instance=2.0, amc_temporal=3.0, amc_margin=0.4, last_level_amc="instance")
    difference = hierarchical_loss(z1, z2, 0.7, settings) - hierarchical_loss(z1, z2, 0.7, fixed)
    assert difference.item() == pytest.approx((0.5 * (3.0 - 2.0) * last_amc / 3).item(), rel=1e-4)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
@pytest.mark.parametrize("length, dilation", [(24, 24), (24, 32), (24, 1024), (7, 8)])
def test_far_dilation_shortcut_matches_the_full_convolution(length, dilation, dtype, tolerance):
    torch.manual_seed(1)
    conv = SamePadConv(16, 16, 3, dilation).to(dtype)
    x = torch.randn(4, 16, length, dtype=dtype)
    full = conv.conv(x)  # padded by `dilation` each side: the reference computation
    assert torch.allclose(conv(x), full, rtol=0, atol=tolerance)


def test_masking_only_in_training_and_nan_timestamps_are_zeroed_after_projection():
    torch.manual_seed(0)
    encoder = TSEncoder(input_dims=2, output_dims=8, hidden_dims=4, depth=2)
    x = torch.randn(3, 10, 2)
    x[1, 4, 0] = float("nan")
    encoder.eval()
    first, second = encoder(x), encoder(x)
    assert torch.equal(first, second) and torch.isfinite(first).all()
    hidden = encoder.input_fc(torch.nan_to_num(x))
    hidden[1, 4] = 0.0  # the invalid timestamp is zero after the projection, bias included
    by_hand = hidden.transpose(1, 2)
    for block in encoder.blocks:
        by_hand = block(by_hand)
    by_hand = by_hand.transpose(1, 2)
    assert torch.allclose(first, by_hand, atol=1e-6)
    encoder.train()
    assert not torch.equal(encoder(x), encoder(x))  # a fresh binomial mask (and dropout) each call


@pytest.mark.parametrize("length1, length2", [(24, 9), (5, 24), (13, 13)])
def test_pair_encoding_equals_encoding_each_crop_alone(length1, length2):
    torch.manual_seed(3)
    encoder = TSEncoder(input_dims=2, output_dims=16, hidden_dims=8, depth=5).eval()
    view1, view2 = torch.randn(4, length1, 2), torch.randn(4, length2, 2)
    view2[0, 1] = float("nan")
    out1, out2 = encode_pair(encoder, view1, view2)
    assert out1.shape == (4, length1, 16) and out2.shape == (4, length2, 16)
    assert torch.allclose(out1, encoder(view1), atol=1e-5) and torch.allclose(out2, encoder(view2), atol=1e-5)


def test_views_share_the_overlap_and_keep_bounds():
    np.random.seed(0)
    x = torch.arange(5 * 24, dtype=torch.float32).reshape(5, 24, 1)
    for _ in range(200):
        view1, view2, overlap = overlapping_views(x)
        assert 2 <= overlap <= 24 and view1.size(1) <= 24 and view2.size(1) <= 24
        assert torch.equal(view1[:, -overlap:], view2[:, :overlap])
        steps = view1[:, 1:, 0] - view1[:, :-1, 0]
        assert (steps == 1).all()  # contiguous slices of each series


def test_small_data_rule_and_metrics():
    rng = np.random.default_rng(0)
    small = make_classifier("svm", rng.normal(size=(20, 4)), np.repeat([0, 1], 10))
    assert small.__class__.__name__ == "SVC" and math.isinf(small.C)
    large = make_classifier("svm", rng.normal(size=(60, 4)), np.repeat([0, 1], 30))
    assert large.__class__.__name__ == "GridSearchCV"
    train_x = np.vstack([rng.normal(0, 0.3, (15, 4)), rng.normal(3, 0.3, (15, 4))])
    test_x = np.vstack([rng.normal(0, 0.3, (10, 4)), rng.normal(3, 0.3, (10, 4))])
    labels_train, labels_test = np.repeat([0, 1], 15), np.repeat([0, 1], 10)
    for protocol in ("svm", "linear", "knn"):
        metrics = evaluate(protocol, train_x, labels_train, test_x, labels_test)
        assert metrics["test/acc"] == 1.0 and metrics["test/f1_macro"] == 1.0
        assert metrics["test/auprc"] == pytest.approx(1.0) and metrics["val/acc"] == 1.0
    flipped = evaluate("svm", train_x, labels_train, test_x, 1 - labels_test)
    assert flipped["test/acc"] == 0.0 and flipped["val/acc"] == 1.0  # validation never sees test labels


# 1-D embeddings: every protocol's score rises with x on the test points, so the ranking is x's own
TRAIN_1D = np.concatenate([np.linspace(-6, -4, 10), np.linspace(8, 10, 10)])[:, None]
TEST_1D, TEST_1D_LABELS = np.arange(5.0)[:, None], np.array([0, 1, 0, 1, 1])


@pytest.mark.parametrize("protocol", ["svm", "linear"])
def test_binary_auprc_scores_the_positive_class(protocol):
    # ranked by x (4, 3, 2, 1, 0): positives at ranks 1, 2, 4 -> AP = (1/1 + 2/2 + 3/4) / 3 = 11/12; the
    # negative class ranked the other way: (1/1 + 2/3) / 2 = 5/6, so averaging both classes gives 0.875
    metrics = evaluate(protocol, TRAIN_1D, np.repeat([0, 1], 10), TEST_1D, TEST_1D_LABELS)
    assert metrics["test/auprc"] == pytest.approx(11 / 12)


def three_classes(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], 20)
    centres = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.5, 1.0, 1.0]])
    return centres[labels] + rng.normal(0, 0.6, (60, 3)) * [1.0, 1.0, 30.0], labels


def test_linear_protocol_is_one_vs_rest_probabilities_as_ts2vec():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import StandardScaler

    (train_x, train_y), (test_x, test_y) = three_classes(0), three_classes(1)
    scaler = StandardScaler().fit(train_x)
    # TS2Vec's tasks/_eval_protocols.py fit_lr: one binary logistic regression per class on standardised
    # features; tasks/classification.py scores AUPRC on predict_proba (OvR: each row's sigmoids normalised)
    sigmoids = np.stack(
        [
            LogisticRegression(random_state=0, max_iter=1_000_000)
            .fit(scaler.transform(train_x), train_y == c)
            .predict_proba(scaler.transform(test_x))[:, 1]
            for c in range(3)
        ],
        axis=1,
    )
    probabilities = sigmoids / sigmoids.sum(axis=1, keepdims=True)
    expected = average_precision_score(np.eye(3)[test_y], probabilities)
    metrics = evaluate("linear", train_x, train_y, test_x, test_y)
    assert metrics["test/auprc"] == pytest.approx(expected, rel=1e-4)
    assert metrics["test/acc"] == pytest.approx((probabilities.argmax(axis=1) == test_y).mean())


def test_knn_protocol_standardises_features_as_ts2vec():
    (train_x, train_y), (test_x, test_y) = three_classes(0), three_classes(1)
    mean, std = train_x.mean(axis=0), train_x.std(axis=0)
    scaled_train, scaled_test = (train_x - mean) / std, (test_x - mean) / std
    nearest = ((scaled_test[:, None] - scaled_train[None]) ** 2).sum(axis=-1).argmin(axis=1)
    metrics = evaluate("knn", train_x, train_y, test_x, test_y)
    assert metrics["test/acc"] == pytest.approx((train_y[nearest] == test_y).mean())
