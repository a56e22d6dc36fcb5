"""The five disentanglement metrics on codes with known answers (disentanglement_lib's own
test cases and a few more), their helpers against hand computations, and the draw / encode /
score split: determinism in the seed, chunked encoding, and a member axis.

The toy data set's observation is the factor vector itself, so a representation is a
function of the factors. Its factors have 3–16 values: at most 20, so MIG's 20-bin histogram
loses nothing on the identity code (a 40-valued factor is tested on its own).

Sizes are small (1 000–2 000 points, DCI with 10 boosted trees) so the file runs in seconds.
Chance tolerances: for an uninformative code the eval labels are independent of the
classifier, so eval accuracy ~ Binomial(1000, 1/F) / 1000 with F = 5: mean 0.2, standard
deviation 0.0126; 0.05 is four of them. Every comparison between codes (identity vs mixed,
vs duplicated) has a margin several times the seed-to-seed spread seen when writing them.
"""

import math
from functools import cache

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from vae_jax.data.ground_truth import FactorsAsObservations
from vae_jax.evaluate.disentangle import METRICS, beta_vae, dci, encode, factor_vae, mig
from vae_jax.evaluate.disentangle.common import (
    Points,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    make_draw,
)

# LogisticRegression with sklearn's defaults (the protocol) stops at max_iter = 100 on the
# unscaled BetaVAE features and warns; the accuracies asserted below are what it reaches.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SIZES = (3, 6, 10, 12, 16)
F = len(SIZES)
DATA = FactorsAsObservations(SIZES)
CHANCE, CHANCE_TOL = 1.0 / F, 0.05
PERM = np.array([3, 0, 4, 1, 2])
SCALE = np.array([0.5, -2.0, 3.0, 0.1, 7.0])


def _fast_gbt():
    return GradientBoostingClassifier(n_estimators=10, random_state=0)


def _options(metric):
    """Small protocol sizes; BetaVAE and FactorVAE keep the default batch of 64."""
    return {
        "beta_vae": {"num_train": 1000, "num_eval": 1000},
        "factor_vae": {"num_variance_estimate": 1000, "num_train": 1000, "num_eval": 1000},
        "mig": {"num_train": 2000},
        "dci": {"num_train": 1000, "num_test": 1000, "model": _fast_gbt()},
        "sap": {"num_train": 1000, "num_test": 1000},
    }[metric]


def _representation(name):
    if name == "identity":
        return lambda x: x
    if name == "permuted":  # permuted, rescaled (one axis flipped) and shifted
        return lambda x: x[:, PERM] * SCALE + 1.0
    if name == "constant":
        return lambda x: np.zeros_like(x)
    if name == "noise":
        rng = np.random.default_rng(123)  # fresh per representation: repeatable
        return lambda x: rng.normal(size=x.shape)
    if name == "duplicated":
        return lambda x: np.hstack([x, x])
    if name == "mixed":  # [f0 + f1, f0 − f1, f2, ...]
        return lambda x: np.hstack([x[:, :1] + x[:, 1:2], x[:, :1] - x[:, 1:2], x[:, 2:]])
    raise KeyError(name)


@cache
def _scores(rep, metric, seed=0):
    return METRICS[metric].compute(DATA, _representation(rep), seed=seed, **_options(metric))


# ---------------------------------------------------------------- ideal codes


@pytest.mark.parametrize("rep", ["identity", "permuted"])
def test_ideal_code_scores_full_marks(rep):
    for metric in ("beta_vae", "factor_vae"):
        s = _scores(rep, metric)
        assert s["train_accuracy"] == 1.0 and s["eval_accuracy"] == 1.0, (metric, s)
    assert _scores(rep, "factor_vae")["num_active_dims"] == F
    d = _scores(rep, "dci")
    assert d["disentanglement"] > 0.9 and d["completeness"] > 0.9, d
    assert d["informativeness_test"] > 0.99, d
    assert _scores(rep, "mig")["discrete_mig"] >= 0.85
    # SAP of the identity: one-coordinate linear SVMs separate few-valued factors only; the
    # best − second best accuracy stays well below 1 but far above the noise code's.
    assert _scores(rep, "sap")["sap_score"] > 0.25


def test_mig_of_permuted_code_equals_identity():
    # The histogram is invariant to a positive or negative affine map of each dimension and
    # MIG to a permutation of the dimensions: same points, same value.
    assert _scores("permuted", "mig") == _scores("identity", "mig")


def test_mig_on_a_40_valued_factor_is_capped_by_the_histogram():
    # 20 equal bins over 0..39 merge the values in pairs: I(bin; v) = H(v // 2) ≈ log 20, so
    # even the identity code's gap is ≈ log 20 / log 40 = 0.812 (minus a small MI bias).
    data = FactorsAsObservations((40, 5))
    s = mig.compute(data, lambda x: x, seed=0, num_train=4000)
    assert s["discrete_mig/factor0"] == pytest.approx(math.log(20) / math.log(40), abs=0.02)
    assert s["discrete_mig/factor1"] > 0.95
    assert s["discrete_mig"] == pytest.approx(
        (s["discrete_mig/factor0"] + s["discrete_mig/factor1"]) / 2
    )


# ---------------------------------------------------------------- uninformative codes


@pytest.mark.parametrize("rep", ["constant", "noise"])
def test_uninformative_code_scores_chance(rep):
    assert abs(_scores(rep, "beta_vae")["eval_accuracy"] - CHANCE) < CHANCE_TOL
    assert _scores(rep, "mig")["discrete_mig"] < 0.02
    assert _scores(rep, "sap")["sap_score"] < 0.04
    d = _scores(rep, "dci")
    assert d["disentanglement"] < 0.1 and d["completeness"] < 0.1, d


def test_factor_vae_of_noise_is_chance_and_of_a_constant_code_is_zero():
    assert abs(_scores("noise", "factor_vae")["eval_accuracy"] - CHANCE) < CHANCE_TOL
    # No dimension has global std ≥ 0.05: disentanglement_lib returns zeros, not chance.
    assert _scores("constant", "factor_vae") == {
        "train_accuracy": 0.0,
        "eval_accuracy": 0.0,
        "num_active_dims": 0,
    }


# ---------------------------------------------------------------- worse codes


def test_duplicated_latents_zero_mig_and_lower_completeness():
    assert _scores("duplicated", "mig")["discrete_mig"] == 0.0  # two equal top MIs per factor
    dup, ident = _scores("duplicated", "dci"), _scores("identity", "dci")
    assert dup["disentanglement"] > 0.9  # each code still serves one factor
    assert dup["completeness"] < ident["completeness"] - 0.2
    target = 1.0 - math.log(2) / math.log(10)  # importance split evenly over 2 of 10 codes
    assert abs(dup["completeness"] - target) < 0.1
    assert _scores("duplicated", "sap")["sap_score"] < 0.01  # equal best and second best


def test_mixing_two_factors_lowers_mig_and_dci_disentanglement():
    mixed, ident = _scores("mixed", "mig"), _scores("identity", "mig")
    assert mixed["discrete_mig"] < ident["discrete_mig"] - 0.2
    for k in (2, 3, 4):  # the untouched factors keep their gaps
        name = f"discrete_mig/factor{k}"
        assert mixed[name] == pytest.approx(ident[name], abs=0.01)
    assert (
        _scores("mixed", "dci")["disentanglement"]
        < _scores("identity", "dci")["disentanglement"] - 0.05
    )


# ---------------------------------------------------------------- seeds


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_same_seed_same_result(metric):
    fn = _representation("mixed")
    a = METRICS[metric].compute(DATA, fn, seed=3, **_options(metric))
    b = METRICS[metric].compute(DATA, fn, seed=3, **_options(metric))
    assert a == b


def test_different_seed_can_differ():
    d0 = mig.draw(DATA, seed=0, num_train=100)
    d1 = mig.draw(DATA, seed=1, num_train=100)
    assert not np.array_equal(d0.points["train"].factors, d1.points["train"].factors)
    # The mixed code saturates BetaVAE and FactorVAE; the noise code does not.
    for rep, metric in [("noise", "beta_vae"), ("noise", "factor_vae")] + [
        ("mixed", m) for m in ("mig", "dci", "sap")
    ]:
        assert _scores(rep, metric, seed=0) != _scores(rep, metric, seed=1), (rep, metric)


# ---------------------------------------------------------------- helpers by hand


def test_histogram_discretize_by_hand():
    # disentanglement_lib's utils_test case, with points as rows.
    x = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]).T
    np.testing.assert_array_equal(
        histogram_discretize(x, num_bins=3), [[1, 3], [1, 3], [2, 2], [2, 2], [3, 1], [3, 1]]
    )
    # The maximum goes to the last bin (not num_bins + 1). A constant column c is binned
    # over np.histogram's range [c − 0.5, c + 0.5]: edges 4.5, 4.75, 5, 5.25 put it in bin 3.
    y = np.array([[0.0, 5.0], [10.0, 5.0], [2.5, 5.0]])
    np.testing.assert_array_equal(histogram_discretize(y, num_bins=4), [[1, 3], [4, 3], [2, 3]])
    # 40 values in 20 bins: pairs (2m, 2m + 1) share bin m + 1.
    b = histogram_discretize(np.arange(40.0)[:, None], num_bins=20)[:, 0]
    np.testing.assert_array_equal(b, np.arange(40) // 2 + 1)


def test_discrete_entropy_and_mutual_info_by_hand():
    ys = np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T
    np.testing.assert_allclose(discrete_entropy(ys), [math.log(3), math.log(3)])
    np.testing.assert_allclose(discrete_entropy(np.array([[0, 0, 0, 1]]).T), [
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    ])  # fmt: skip
    xs = np.array([[1, 2, 1, 2], [1, 1, 2, 2]]).T
    ys = np.array([[1, 2, 1, 2], [2, 2, 1, 1]]).T
    np.testing.assert_allclose(
        discrete_mutual_info(xs, ys), [[math.log(2), 0.0], [0.0, math.log(2)]], atol=1e-12
    )


def test_dci_scores_of_hand_made_importance_matrices():
    eye = np.diag(5.0 * np.ones(5))
    assert dci.disentanglement(eye) == pytest.approx(1.0)
    assert dci.completeness(eye) == pytest.approx(1.0)
    uniform = np.ones((5, 5))
    assert dci.disentanglement(uniform) == pytest.approx(0.0, abs=1e-9)
    assert dci.completeness(uniform) == pytest.approx(0.0, abs=1e-9)
    zero = np.zeros((10, 10))
    assert dci.disentanglement(zero) == pytest.approx(0.0, abs=1e-7)
    assert dci.completeness(zero) == pytest.approx(0.0, abs=1e-7)
    empty_code = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # an unused code dimension
    assert dci.disentanglement(empty_code) == pytest.approx(1.0)
    assert dci.completeness(empty_code) == pytest.approx(1.0)
    split = 1.0 - math.log(2) / math.log(10)
    redundant = np.vstack([eye, eye])  # each factor spread over 2 of 10 codes
    assert dci.disentanglement(redundant) == pytest.approx(1.0)
    assert dci.completeness(redundant) == pytest.approx(split)
    shared = np.hstack([eye, eye])  # each code serves 2 of 10 factors
    assert dci.disentanglement(shared) == pytest.approx(split)
    assert dci.completeness(shared) == pytest.approx(1.0)


def test_beta_vae_pair_features_by_hand():
    # One point, batches of 2, D = 2: mean over the batch of |z1 − z2|.
    codes = np.array([[[[0.0, 1.0], [2.0, 3.0]], [[1.0, 1.0], [0.0, 7.0]]]])  # [1, 2, 2, 2]
    np.testing.assert_allclose(beta_vae.pair_features(codes), [[1.5, 2.0]])


def test_factor_vae_majority_vote_by_hand():
    # Global variances (ddof 1) of the variance points: [2, 8, 0]; dimension 2 is pruned.
    variance_codes = np.array([[-1.0, -2.0, 0.0], [1.0, 2.0, 0.0]])
    a = [0.2, 8.0, 0.0]  # normalised [0.1, 1.0, -]: votes for dim 0 (dim 2 is inactive)
    b = [2.0, 0.8, 0.0]  # normalised [1.0, 0.1, -]: votes for dim 1
    labels = {"train": np.array([0, 0, 1, 1]), "eval": np.array([1, 1])}
    draw = make_draw(
        "factor_vae", FactorsAsObservations((2, 2)), 0,
        {k: Points(np.zeros((len(v), 2), np.uint8)) for k, v in labels.items()}, labels, {},
    )  # fmt: skip
    codes = {"variance": variance_codes, "train": np.array([a, a, a, b]), "eval": np.array([a, b])}
    # Train votes: dim 0 → {f0: 2, f1: 1}, dim 1 → {f1: 1}; dim 0 predicts f0, dim 1 f1.
    assert factor_vae.score(draw, codes) == {
        "train_accuracy": 0.75,
        "eval_accuracy": 0.5,
        "num_active_dims": 2,
    }


# ---------------------------------------------------------------- the draw and encoding


def test_draws_follow_the_protocol():
    d = beta_vae.draw(DATA, seed=0, batch_size=8, num_train=50, num_eval=20)
    f, k = d.points["train"].factors, d.labels["train"]  # [50, 2, 8, F], [50]
    assert f.shape == (50, 2, 8, F) and f.dtype == np.uint8 and d.points["eval"].num_points == 20
    rows = np.arange(50)
    np.testing.assert_array_equal(f[rows, 0, :, k], f[rows, 1, :, k])  # factor k shared
    assert (f[:, 0] != f[:, 1]).any(axis=(1, 2)).all()  # the rest is drawn afresh
    assert set(k) == set(range(F))
    v = factor_vae.draw(DATA, seed=0, num_variance_estimate=30, batch_size=8, num_train=50)
    g, k = v.points["train"].factors, v.labels["train"]
    assert v.points["variance"].factors.shape == (30, F) and g.shape == (50, 8, F)
    held = g[rows, :, k]  # [50, 8]: constant along the batch
    np.testing.assert_array_equal(held, np.repeat(held[:, :1], 8, axis=1))
    assert all(len(np.unique(g[i, :, j])) > 1 for i in range(5) for j in range(F) if j != k[i])


class _RecordingData(FactorsAsObservations):
    def __init__(self, sizes):
        super().__init__(sizes)
        self.requests = []

    def observations(self, factors, rng):
        self.requests.append(len(factors))
        return super().observations(factors, rng)


@pytest.mark.parametrize("metric", ["mig", "beta_vae"])
def test_encoding_is_chunked_and_chunk_size_does_not_change_the_codes(metric):
    data = _RecordingData(SIZES)
    sizes = {"mig": {"num_train": 1000}, "beta_vae": {"num_train": 40, "num_eval": 10}}[metric]
    draw = METRICS[metric].draw(data, seed=0, **sizes)
    big = encode(data, draw, _representation("mixed"))
    data.requests.clear()
    small = encode(data, draw, _representation("mixed"), chunk_size=300)
    assert max(data.requests) <= 300 and sum(data.requests) == draw.num_observations
    assert len(data.requests) > len(draw.points)  # more than one chunk per part
    assert big.keys() == small.keys()
    for part in big:
        np.testing.assert_allclose(small[part], big[part], rtol=1e-12)
    if metric == "mig":  # the codes are the representation of the drawn factors
        factors = draw.points["train"].factors.astype(np.float32)
        np.testing.assert_array_equal(big["train"], _representation("mixed")(factors))


class _NoisyData(FactorsAsObservations):
    """Observation = factors + N(0, 0.1²) noise from the rng the metric passes."""

    def observations(self, factors, rng):
        return super().observations(factors, rng) + 0.1 * rng.normal(size=factors.shape)


def test_observation_noise_is_repeatable_across_encodings():
    # A data set whose observations depend on `rng`: encoding the same draw again (say for
    # another member) must render the same observations, and different parts different ones.
    data = _NoisyData(SIZES)
    draw = METRICS["dci"].draw(data, seed=0, num_train=500, num_test=500)
    first = encode(data, draw, lambda x: x, chunk_size=128)
    second = encode(data, draw, lambda x: x, chunk_size=128)
    for part in first:
        np.testing.assert_array_equal(first[part], second[part])
        noise = first[part] - draw.labels[part]
        assert 0.05 < noise.std() < 0.2  # the noise is there ...
    assert not np.allclose(noise[:10], (first["train"] - draw.labels["train"])[:10])  # ... per part


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_member_axis_equals_scoring_each_member(metric):
    opts = _options(metric)
    sizes = {k: v for k, v in opts.items() if k.startswith("num_")}
    scoring = {k: v for k, v in opts.items() if k == "model"}
    members = [_representation("mixed"), _representation("constant")]
    draw = METRICS[metric].draw(DATA, seed=0, **sizes)
    codes = encode(DATA, draw, lambda x: np.stack([fn(x) for fn in members]))
    assert all(c.shape[0] == 2 for c in codes.values())
    together = METRICS[metric].score(draw, codes, **scoring)
    alone = [METRICS[metric].score(draw, encode(DATA, draw, fn), **scoring) for fn in members]
    assert together == alone
    assert together[0] != together[1]  # the members are told apart
