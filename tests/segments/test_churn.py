"""segments.purchase_model: BG/NBD + Gamma-Gamma validated against the published CDNOW results.

Pure numpy/scipy tests, no database. Data: tests/segments/data/README.md.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from segments import purchase_model as churn

DATA = Path(__file__).parent / "data"

# Fader, Hardie & Lee (2005), CDNOW sample, 39-week calibration period, time in weeks.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
# Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value"; lifetimes 0.11.3 on the same data.
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
LIFETIMES_GG = {"p": 6.2502, "q": 3.7444, "v": 15.4472}


def close(value, target, rel=0.01, abs_=0.005):
    return abs(value - target) <= max(rel * abs(target), abs_)


@pytest.fixture(scope="module")
def cdnow():
    d = np.genfromtxt(DATA / "cdnow_customers_summary.csv", delimiter=",", names=True)
    return d["frequency"], d["recency"], d["T"]


@pytest.fixture(scope="module")
def cdnow_money():
    d = np.genfromtxt(DATA / "cdnow_customers_summary_with_transactions.csv", delimiter=",", names=True)
    return d["x"], d["t_x"], d["T"], d["zbar"]


@pytest.fixture(scope="module")
def bgnbd_fit(cdnow):
    return churn.fit_bgnbd(*cdnow, time_unit="weeks")


@pytest.fixture(scope="module")
def gg_fit(cdnow_money):
    x, _, _, m = cdnow_money
    return churn.fit_gamma_gamma(x, m)


def published_bgnbd(time_unit="weeks"):
    return churn.BgNbdParams(**PUBLISHED_BGNBD, time_unit=time_unit)


def simulate_bgnbd(n, r, alpha, a, b, max_age, seed):
    """Customers drawn from BG/NBD itself, summarised in whole days like the database does."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    age = rng.integers(1, max_age + 1, n).astype(float)
    last = rng.geometric(p)  # the repeat purchase after which the customer drops out
    n_arrivals = rng.poisson(lam * age)  # purchases a never-dropping customer would make in (0, T]
    x = np.minimum(n_arrivals, last)
    tx = np.zeros(n)
    pos = x > 0
    # time of the x-th of n uniform arrivals on (0, T]: T times a Beta(x, n - x + 1) order statistic
    tx[pos] = age[pos] * rng.beta(x[pos], n_arrivals[pos] - x[pos] + 1)
    return x.astype(float), np.minimum(np.round(tx), age), age


# ---------------------------------------------------------------- BG/NBD against the paper


def test_bgnbd_recovers_published_cdnow_estimates(bgnbd_fit):
    for name, target in PUBLISHED_BGNBD.items():
        assert close(getattr(bgnbd_fit, name), target), (name, getattr(bgnbd_fit, name), target)
    assert bgnbd_fit.log_likelihood == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.1)
    assert bgnbd_fit.converged
    assert bgnbd_fit.n_customers == 2357
    assert bgnbd_fit.time_unit == "weeks"
    assert bgnbd_fit.fitted_at is not None


def test_bgnbd_fit_is_at_least_as_good_as_published_params(cdnow, bgnbd_fit):
    ll_published = churn.bgnbd_log_likelihood(published_bgnbd(), *cdnow)
    assert ll_published == pytest.approx(PUBLISHED_BGNBD_LL, abs=0.1)
    assert bgnbd_fit.log_likelihood >= ll_published - 1e-9


def test_expected_purchases_paper_example(bgnbd_fit):
    # FHL 2005: customer with x = 2, t_x = 30.43, T = 38.86 weeks expects 1.226 purchases in the next 39.
    for params in (published_bgnbd(), bgnbd_fit):
        value = float(churn.expected_purchases(params, 39, 2, 30.43, 38.86))
        assert value == pytest.approx(1.226, abs=1e-3)


def test_p_alive_conventions(bgnbd_fit):
    assert churn.p_alive(bgnbd_fit, [0, 0], [0, 0], [1.0, 500.0]).tolist() == [1.0, 1.0]
    ages = np.linspace(30.43, 500, 50)
    alive = churn.p_alive(bgnbd_fit, 2, 30.43, ages)
    assert np.all(np.diff(alive) < 0)
    assert np.all((alive > 0) & (alive <= 1))
    # paper's formula directly
    r, alpha, a, b = bgnbd_fit.r, bgnbd_fit.alpha, bgnbd_fit.a, bgnbd_fit.b
    direct = 1 / (1 + a / (b + 2 - 1) * ((alpha + 38.86) / (alpha + 30.43)) ** (r + 2))
    assert float(churn.p_alive(bgnbd_fit, 2, 30.43, 38.86)) == pytest.approx(direct, rel=1e-12)
    # no overflow for extreme histories
    assert float(churn.p_alive(bgnbd_fit, 5000, 1.0, 1e6)) == pytest.approx(0.0, abs=1e-300)


def test_time_unit_only_rescales_alpha(cdnow, bgnbd_fit):
    x, tx, age = cdnow
    in_days = churn.fit_bgnbd(x, tx * 7, age * 7, time_unit="days")
    converted = bgnbd_fit.with_time_unit("days")
    for name in ("r", "alpha", "a", "b"):
        assert getattr(in_days, name) == pytest.approx(getattr(converted, name), rel=1e-4)
    weeks = churn.expected_purchases(bgnbd_fit, churn.from_days(90), x, tx, age)
    days = churn.expected_purchases(converted, 90, x, tx * 7, age * 7)
    np.testing.assert_allclose(days, weeks, rtol=1e-10)


def test_expected_purchases_is_stable_for_heavy_buyers(bgnbd_fit):
    params = bgnbd_fit.with_time_unit("days")
    x = np.arange(0, 3001, dtype=float)
    age = np.full_like(x, 3000.0)
    tx = np.full_like(x, 2990.0)
    values = churn.expected_purchases(params, 90, x, tx, age)
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    # the fallback branch joins the paper's formula smoothly: no jumps between neighbours
    assert np.max(np.abs(np.diff(values))) < 0.05
    for xi in (1, 150, 800, 3000):
        assert values[xi] == pytest.approx(reference_expected_purchases(params, 90, xi, 2990, 3000), rel=1e-8)
    assert float(churn.expected_purchases(params, 0, 5, 100, 200)) == 0.0
    horizons = churn.expected_purchases(params, [30, 90, 365], 5, 100, 200)
    assert np.all(np.diff(horizons) > 0)


def reference_expected_purchases(params, t, x, tx, age):
    """Eq. 10 with 2F1 summed in plain Python after Euler's transformation (independent of scipy)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + age + t)
    aa, bb, cc = a + b - 1 - r, a - 1, a + b + x - 1
    term, total, k = 1.0, 1.0, 0
    while abs(term) > 1e-17 * abs(total):
        term *= (aa + k) * (bb + k) / ((cc + k) * (k + 1)) * z
        total += term
        k += 1
    power_hyp = (1 - z) ** (a - 1) * total
    alive = 1 / (1 + (a / (b + x - 1)) * math.exp((r + x) * math.log((alpha + age) / (alpha + tx))))
    return cc / (a - 1) * (1 - power_hyp) * alive


# ---------------------------------------------------------------- Gamma-Gamma against the note


def test_gamma_gamma_recovers_published_cdnow_estimates(cdnow_money, gg_fit):
    for name in ("p", "q", "v"):
        assert close(getattr(gg_fit, name), PUBLISHED_GG[name]), (name, getattr(gg_fit, name))
        assert getattr(gg_fit, name) == pytest.approx(LIFETIMES_GG[name], rel=1e-3)
    assert gg_fit.converged and not gg_fit.uses_sample_mean
    assert gg_fit.n_customers == 946  # repeat customers only
    x, _, _, m = cdnow_money
    lifetimes_ll = churn.gamma_gamma_log_likelihood(churn.GammaGammaParams(**LIFETIMES_GG), x, m)
    assert gg_fit.log_likelihood >= lifetimes_ll - 1e-9


def test_expected_order_value(gg_fit):
    p, q, v = gg_fit.p, gg_fit.q, gg_fit.v
    population = v * p / (q - 1)
    assert gg_fit.population_mean == pytest.approx(population)
    values = churn.expected_order_value(gg_fit, [0, 3, 3, 3], [0.0, 0.0, -12.5, 40.0])
    expected_x3 = (q - 1) / (p * 3 + q - 1) * population + p * 3 / (p * 3 + q - 1) * 40.0
    np.testing.assert_allclose(values, [population, population, population, expected_x3], rtol=1e-12)


def test_expected_order_value_falls_back_to_sample_mean_when_q_at_most_one():
    params = churn.GammaGammaParams(p=2.0, q=0.8, v=10.0, sample_mean=25.0, uses_sample_mean=True)
    values = churn.expected_order_value(params, [0, 2, 5], [0.0, -3.0, 30.0])
    assert values[0] == values[1] == 25.0
    assert values[2] == pytest.approx(2.0 * (10.0 + 5 * 30.0) / (2.0 * 5 + 0.8 - 1))


# ---------------------------------------------------------------- robustness


def test_one_order_and_refunded_customers_are_scored_not_fitted(cdnow_money, gg_fit, bgnbd_fit):
    x, tx, age, m = cdnow_money
    assert np.sum(x == 0) > 1000  # most CDNOW customers never came back
    extra_x = np.array([0, 1, 2, 4, 1])
    extra_m = np.array([0.0, 0.0, -15.0, -0.01, 0.0])  # zero and refunded mean values
    fit = churn.fit_gamma_gamma(np.concatenate([x, extra_x]), np.concatenate([m, extra_m]))
    assert fit.n_customers == gg_fit.n_customers
    assert (fit.p, fit.q, fit.v) == pytest.approx((gg_fit.p, gg_fit.q, gg_fit.v), rel=1e-6)

    all_x = np.concatenate([x, extra_x])
    all_tx = np.concatenate([tx, [0, 5, 10, 20, 30]])
    all_age = np.concatenate([age, [38.0, 38.0, 38.0, 38.0, 38.0]])
    out = churn.predict(bgnbd_fit, fit, all_x, all_tx, all_age, np.concatenate([m, extra_m]), horizon=90 / 7)
    for arr in (out.p_alive, out.expected_purchases, out.expected_order_value, out.clv):
        assert arr.shape == all_x.shape and np.all(np.isfinite(arr))
    assert np.all(out.p_alive[all_x == 0] == 1.0)
    assert np.all(out.expected_purchases > 0)
    np.testing.assert_allclose(out.expected_order_value[-5:], fit.population_mean)
    np.testing.assert_allclose(out.clv, out.expected_purchases * out.expected_order_value)


def test_collapsed_rows_with_weights_match_the_full_fit(cdnow):
    x, tx, age = cdnow
    full = churn.fit_bgnbd(x, tx, age, collapse=False)
    ux, utx, uage, w = churn.collapse_rows(x, tx, age)
    assert ux.size < x.size and w.sum() == x.size
    weighted = churn.fit_bgnbd(ux, utx, uage, weights=w, collapse=False)
    for name in ("r", "alpha", "a", "b", "log_likelihood"):
        assert getattr(weighted, name) == pytest.approx(getattr(full, name), rel=1e-6)
    assert weighted.n_customers == full.n_customers == x.size

    tripled = churn.fit_bgnbd(np.tile(x, 3), np.tile(tx, 3), np.tile(age, 3), collapse=False)
    counted = churn.fit_bgnbd(x, tx, age, weights=np.full(x.size, 3.0), collapse=False)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(counted, name) == pytest.approx(getattr(tripled, name), rel=1e-6)
        assert getattr(counted, name) == pytest.approx(getattr(full, name), rel=1e-6)


def test_collapse_packs_whole_day_summaries_like_the_general_path():
    x, tx, age = simulate_bgnbd(20_000, 0.5, 20.0, 0.8, 2.5, max_age=400, seed=7)
    packed = churn.collapse_rows(x, tx, age)  # whole days: single int64 key
    general = churn.collapse_rows(x, tx + 0.5, age + 0.5)  # fractional: three-key lexsort
    zero = general[0] == 0
    np.testing.assert_array_equal(packed[0], general[0])
    np.testing.assert_array_equal(packed[1], np.where(zero, 0.0, general[1] - 0.5))
    np.testing.assert_array_equal(packed[2], general[2] - 0.5)
    np.testing.assert_array_equal(packed[3], general[3])
    assert packed[3].sum() == 20_000


def test_gamma_gamma_weights_match_duplicated_rows(cdnow_money, gg_fit):
    x, _, _, m = cdnow_money
    weighted = churn.fit_gamma_gamma(x, m, weights=np.full(x.size, 2.0))
    doubled = churn.fit_gamma_gamma(np.tile(x, 2), np.tile(m, 2))
    assert (weighted.p, weighted.q, weighted.v) == pytest.approx((doubled.p, doubled.q, doubled.v), rel=1e-6)
    assert (weighted.p, weighted.q, weighted.v) == pytest.approx((gg_fit.p, gg_fit.q, gg_fit.v), rel=1e-6)


def test_penalizer_shrinks_parameters(cdnow, bgnbd_fit):
    penalised = churn.fit_bgnbd(*cdnow, penalizer=0.01)
    size = sum(getattr(penalised, n) ** 2 for n in ("r", "alpha", "a", "b"))
    assert size < sum(getattr(bgnbd_fit, n) ** 2 for n in ("r", "alpha", "a", "b"))
    assert penalised.log_likelihood < bgnbd_fit.log_likelihood
    assert penalised.penalizer == 0.01


def test_million_customer_synthetic_fit_recovers_generating_params():
    true = {"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 2.5}  # alpha in days
    x, tx, age = simulate_bgnbd(1_000_000, *true.values(), max_age=730, seed=20260412)
    fit = churn.fit_bgnbd(x, tx, age)  # collapses duplicate (x, t_x, T) rows itself
    assert fit.converged and fit.n_customers == 1_000_000
    for name, value in true.items():
        assert getattr(fit, name) == pytest.approx(value, rel=0.10), name


# ---------------------------------------------------------------- edge cases


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        churn.fit_bgnbd([], [], [])
    with pytest.raises(ValueError, match="empty"):
        churn.fit_gamma_gamma([], [])
    with pytest.raises(ValueError, match="NaN or infinite"):
        churn.fit_bgnbd([1, 2], [np.nan, 3], [5, 5])
    with pytest.raises(ValueError, match="NaN or infinite"):
        churn.fit_bgnbd([1, 2], [1, 3], [5, np.inf])
    with pytest.raises(ValueError, match="NaN or infinite"):
        churn.fit_gamma_gamma([1, 2], [np.nan, 3.0])
    with pytest.raises(ValueError, match="recency must not exceed T"):
        churn.fit_bgnbd([1, 2], [6, 3], [5, 5])
    with pytest.raises(ValueError, match="recency must not exceed T"):
        churn.p_alive(published_bgnbd(), 1, 6, 5)
    with pytest.raises(ValueError, match="non-negative integer"):
        churn.fit_bgnbd([1.5], [1], [5])
    with pytest.raises(ValueError, match="non-negative integer"):
        churn.fit_bgnbd([-1], [1], [5])
    with pytest.raises(ValueError, match="same length"):
        churn.fit_bgnbd([1, 2, 3], [1, 2], [5, 5])
    with pytest.raises(ValueError, match="weights"):
        churn.fit_bgnbd([1, 2], [1, 2], [5, 5], weights=[1.0])
    with pytest.raises(ValueError, match="horizon"):
        churn.expected_purchases(published_bgnbd(), -1, 1, 1, 5)
    with pytest.raises(ValueError, match="time unit"):
        churn.fit_bgnbd([1, 2], [1, 2], [5, 5], time_unit="fortnights")


def test_no_repeat_purchases_raises_insufficient_data():
    with pytest.raises(churn.InsufficientDataError, match="repeat purchase"):
        churn.fit_bgnbd([0, 0, 0], [0, 0, 0], [10, 20, 30])
    with pytest.raises(churn.InsufficientDataError):
        churn.fit_gamma_gamma([0, 3, 2], [0.0, 0.0, -5.0])
    assert issubclass(churn.InsufficientDataError, ValueError)


def test_single_customer_fits_without_crashing():
    fit = churn.fit_bgnbd([3], [20.0], [30.0])
    assert all(np.isfinite([fit.r, fit.alpha, fit.a, fit.b, fit.log_likelihood]))
    assert fit.n_customers == 1
    assert not fit.converged  # one customer cannot identify four parameters: flagged, not raised
    gg = churn.fit_gamma_gamma([3], [25.0])
    assert all(np.isfinite([gg.p, gg.q, gg.v]))
    assert not gg.converged
    out = churn.predict(fit, gg, [3], [20.0], [30.0], [25.0], horizon=90)
    assert np.all(np.isfinite(out.clv)) and np.all(out.clv >= 0)


def test_params_round_trip_through_dict(bgnbd_fit, gg_fit):
    assert churn.BgNbdParams.from_dict(bgnbd_fit.to_dict()) == bgnbd_fit
    assert churn.GammaGammaParams.from_dict(gg_fit.to_dict()) == gg_fit
    assert isinstance(bgnbd_fit.to_dict()["fitted_at"], str)


def test_clv_is_undiscounted_product():
    np.testing.assert_allclose(churn.clv([1.0, 2.5, 0.0], [10.0, 4.0, 99.0], margin=0.3), [3.0, 3.0, 0.0])
