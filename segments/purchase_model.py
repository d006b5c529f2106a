"""Customer-base model for the segments engine: BG/NBD (who is still buying, how often) and
Gamma-Gamma (how much per order), fitted by maximum likelihood.

Pure numpy/scipy: no Django, no database. The database computes each customer's summary and passes
arrays in; the nightly job stores the returned parameter dataclasses (``to_dict()``) with their
``fitted_at`` date and uses them for scoring until the next refit.

Per customer the summary is

* ``frequency`` (x): number of **repeat** purchases, i.e. orders after the first one (an integer >= 0);
* ``recency`` (t_x): time from the first purchase to the last one (0 when x = 0);
* ``T``: age, time from the first purchase to the end of the observation period (``recency <= T``);
* ``monetary_value`` (m̄): mean value of the **repeat** orders (pass 0 when x = 0).

Time unit
    The model works in whatever unit the summary is in, and ``alpha`` (and the prediction horizon)
    are in that unit; ``r``, ``a`` and ``b`` are unit-free. The product passes **days**; the BG/NBD paper
    and the CDNOW test data use **weeks**. ``BgNbdParams.with_time_unit()`` converts fitted parameters
    (``alpha_days = 7 * alpha_weeks``) and ``from_days()`` converts day counts to weeks.

Conventions and edge cases (documented choices)
    * Empty input, NaN/inf values, negative values, a non-integer frequency, ``recency > T`` or
      mismatched lengths raise ``ValueError``.
    * When no customer has a repeat purchase (every x = 0), or no customer has x > 0 with a positive
      monetary value, the model is not identified: the fits raise ``InsufficientDataError`` (a
      ``ValueError``), so the nightly job keeps the previous stored fit instead of storing a degenerate
      one. Any other data (even a single customer) returns a result; ``converged`` is True only when
      the optimiser succeeded and every parameter is in a plausible range (data too thin to identify
      the model, such as a handful of customers, drive parameters to 1e5 and beyond; the range is
      [1e-4, 1e4], ``_LOG_PLAUSIBLE``). The nightly job stores a fit only when ``converged`` and
      otherwise keeps the previous one (``engine.fit_model``).
    * Customers with one order (x = 0) are part of the BG/NBD fit and get predictions: P(alive) = 1 by
      the model's convention (drop-out only happens after a repeat purchase).
    * Zero or refunded (negative) mean order values are excluded from the Gamma-Gamma fit; those
      customers, and customers with x = 0, are predicted the population mean order value.
    * ``clv()`` is undiscounted: expected purchases over the caller's horizon times expected order value
      times the margin.

References
    Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD
    Model", Marketing Science 24(2) 275-284 (likelihood eq. 6, conditional expectation eq. 10);
    Fader & Hardie (2008), "Computing P(alive) Using the BG/NBD Model" (note 021);
    Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (note 025).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize, special

__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "BgNbdParams",
    "CustomerPredictions",
    "GammaGammaParams",
    "InsufficientDataError",
    "bgnbd_log_likelihood",
    "clv",
    "collapse_rows",
    "expected_order_value",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "from_days",
    "gamma_gamma_log_likelihood",
    "p_alive",
    "predict",
]

DEFAULT_HORIZON_DAYS = 90
_DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0}
# Search box for the log-parameters: exp(+-25) is far beyond any meaningful value; an optimum on the
# box edge means the data do not pin that parameter down (reported as converged=False).
_LOG_BOUND = 25.0
# Plausible range of the unit-free parameters (r, a, b; p, q) and of BG/NBD's alpha (days or weeks):
# exp(+-9.2) ~ [1e-4, 1e4]. Fits on real bases land well inside (CDNOW: 0.24 to 6.3; alpha 31 days);
# data too thin to identify the model (e.g. a handful of customers) drive them to 1e5 and beyond,
# even when the optimiser reports success: such fits are converged=False.
_LOG_PLAUSIBLE = 9.2


class InsufficientDataError(ValueError):
    """The data cannot identify the model (e.g. nobody has a repeat purchase)."""


# --------------------------------------------------------------------------------------------------
# Parameter containers
# --------------------------------------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _params_to_dict(obj: Any) -> dict[str, Any]:
    out = dataclasses.asdict(obj)
    if out.get("fitted_at") is not None:
        out["fitted_at"] = out["fitted_at"].isoformat()
    return out


def _params_kwargs_from_dict(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if isinstance(kwargs.get("fitted_at"), str):
        kwargs["fitted_at"] = dt.datetime.fromisoformat(kwargs["fitted_at"])
    return kwargs


@dataclasses.dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters: purchase rate λ ~ Gamma(shape r, rate alpha), drop-out p ~ Beta(a, b).

    ``alpha`` is in ``time_unit``; ``log_likelihood`` is the (unpenalised) total over ``n_customers``.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    time_unit: str = "days"
    penalizer: float = 0.0
    fitted_at: dt.datetime | None = None
    message: str = ""

    def with_time_unit(self, time_unit: str) -> BgNbdParams:
        """The same model with times measured in ``time_unit`` ("days" or "weeks")."""
        factor = _unit_factor(self.time_unit, time_unit)
        return dataclasses.replace(self, alpha=self.alpha * factor, time_unit=time_unit)

    def to_dict(self) -> dict[str, Any]:
        return _params_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BgNbdParams:
        return cls(**_params_kwargs_from_dict(cls, data))


@dataclasses.dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: order value ~ Gamma(shape p, rate ν), ν ~ Gamma(shape q, rate v).

    ``v`` is the scale ("gamma" in Fader & Hardie), in currency units. ``n_customers`` counts the
    customers the fit used (x > 0 and a positive mean order value). ``sample_mean`` is the mean of
    those customers' mean order values; when the fit gives ``q <= 1`` the population mean
    ``v p / (q - 1)`` does not exist and ``uses_sample_mean`` is set: the sample mean stands in for it.
    """

    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    sample_mean: float = float("nan")
    uses_sample_mean: bool = False
    penalizer: float = 0.0
    fitted_at: dt.datetime | None = None
    message: str = ""

    @property
    def population_mean(self) -> float:
        """Expected order value of a customer we know nothing about."""
        if self.q > 1.0 and not self.uses_sample_mean:
            return self.v * self.p / (self.q - 1.0)
        return self.sample_mean

    def to_dict(self) -> dict[str, Any]:
        return _params_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GammaGammaParams:
        return cls(**_params_kwargs_from_dict(cls, data))


@dataclasses.dataclass(frozen=True)
class CustomerPredictions:
    """Per-customer outputs; ``expected_purchases`` and ``clv`` cover ``horizon`` time units."""

    p_alive: np.ndarray
    expected_purchases: np.ndarray
    expected_order_value: np.ndarray
    clv: np.ndarray
    horizon: float


# --------------------------------------------------------------------------------------------------
# Units and input validation
# --------------------------------------------------------------------------------------------------


def _unit_factor(from_unit: str, to_unit: str) -> float:
    try:
        return _DAYS_PER_UNIT[from_unit] / _DAYS_PER_UNIT[to_unit]
    except KeyError:
        raise ValueError(
            f"time unit must be one of {sorted(_DAYS_PER_UNIT)}, got {from_unit!r} -> {to_unit!r}"
        ) from None


def from_days(values: Any, to_unit: str = "weeks") -> np.ndarray:
    """Convert day counts (recency, T, horizon) to ``to_unit`` (default weeks)."""
    return np.asarray(values, dtype=float) * _unit_factor("days", to_unit)


def _as_float(name: str, values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_summary(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated, broadcast float arrays (same shape) for a (frequency, recency, T) summary."""
    x = _as_float("frequency", frequency)
    tx = _as_float("recency", recency)
    age = _as_float("T", T)
    try:
        x, tx, age = np.broadcast_arrays(x, tx, age)
    except ValueError as exc:
        raise ValueError("frequency, recency and T must have the same length") from exc
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency must be a non-negative integer count of repeat purchases")
    if np.any(tx < 0) or np.any(age < 0):
        raise ValueError("recency and T must be non-negative")
    if np.any(tx > age):
        raise ValueError("recency must not exceed T (time of last purchase is within the customer's age)")
    return x, tx, age


def _check_fit_inputs(arrays: tuple[np.ndarray, ...], weights: Any) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    arrays = tuple(np.ravel(a) for a in arrays)
    n = arrays[0].size
    if n == 0:
        raise ValueError("cannot fit a model on an empty customer summary")
    if weights is None:
        w = np.ones(n)
    else:
        w = np.ravel(_as_float("weights", weights))
        if w.size != n:
            raise ValueError("weights must have one entry per customer row")
        if np.any(w < 0):
            raise ValueError("weights must be non-negative")
    if not np.any(w > 0):
        raise ValueError("all weights are zero")
    keep = w > 0
    return tuple(a[keep] for a in arrays), w[keep]


def collapse_rows(
    frequency: Any, recency: Any, T: Any, weights: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge identical (frequency, recency, T) rows into unique rows with summed weights.

    Recency is irrelevant to the likelihood when frequency is 0, so it is set to 0 there first, which
    lets all one-order customers of the same age share a row. Returns ``(x, t_x, T, weights)``.
    """
    x, tx, age = _check_summary(frequency, recency, T)
    (x, tx, age), w = _check_fit_inputs((x, tx, age), weights)
    tx = np.where(x > 0, tx, 0.0)
    # Sort on the triple, then run-length encode equal neighbours. Whole-number summaries (days) pack
    # into one int64 key, which sorts several times faster than a three-key lexsort.
    t_max = float(age.max()) + 1.0
    if np.all(tx == np.floor(tx)) and np.all(age == np.floor(age)) and (float(x.max()) + 1) * t_max**2 < 2**62:
        span = np.int64(t_max)
        key = (x.astype(np.int64) * span + tx.astype(np.int64)) * span + age.astype(np.int64)
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((age, tx, x))
    xs, txs, ages, ws = x[order], tx[order], age[order], w[order]
    new = np.ones(xs.size, dtype=bool)
    new[1:] = (xs[1:] != xs[:-1]) | (txs[1:] != txs[:-1]) | (ages[1:] != ages[:-1])
    starts = np.flatnonzero(new)
    return xs[starts], txs[starts], ages[starts], np.add.reduceat(ws, starts)


# --------------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _BgNbdData:
    """A (collapsed) summary arranged so one likelihood evaluation touches few per-row arrays.

    Terms that depend on x alone (lnΓ(r+x), ψ(b+x), ...) are evaluated once per distinct x, and
    ln(α+T), ln(α+t_x) once per distinct time value: with day-valued summaries there are a few hundred
    of each against hundreds of thousands of rows. Sums over ln(α+T) are weight-per-distinct-T dot
    products, so only repeat customers (x > 0) need per-row work (the log-sum-exp of eq. 6).
    """

    t_u: np.ndarray  # distinct T and t_x values
    x_u: np.ndarray  # distinct x
    wx_u: np.ndarray  # total weight per distinct x
    wT_u: np.ndarray  # total weight per distinct T (on t_u)
    wxT_u: np.ndarray  # total weight * x per distinct T (on t_u)
    total: float
    # repeat customers only
    w: np.ndarray
    x: np.ndarray
    x_inv: np.ndarray
    T_inv: np.ndarray
    tx_inv: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray, tx: np.ndarray, age: np.ndarray, w: np.ndarray) -> _BgNbdData:
        x_u, x_inv = np.unique(x, return_inverse=True)
        t_u, t_inv = np.unique(np.concatenate([age, tx]), return_inverse=True)
        T_inv, tx_inv = t_inv[: age.size], t_inv[age.size :]
        pos = x > 0
        return cls(
            t_u=t_u, x_u=x_u, wx_u=np.bincount(x_inv, weights=w, minlength=x_u.size),
            wT_u=np.bincount(T_inv, weights=w, minlength=t_u.size),
            wxT_u=np.bincount(T_inv, weights=w * x, minlength=t_u.size), total=float(w.sum()),
            w=w[pos], x=x[pos], x_inv=x_inv[pos], T_inv=T_inv[pos], tx_inv=tx_inv[pos],
        )  # fmt: skip


def _bgnbd_ll_grad(params: np.ndarray, data: _BgNbdData, want_grad: bool = True) -> tuple[float, np.ndarray | None]:
    """Weighted BG/NBD log-likelihood (FHL 2005, eq. 6) and its gradient in (r, alpha, a, b).

    L_i = A1 + A2 + log(exp(A3) + [x>0] exp(A4)) with
    A1 = lnΓ(r+x) − lnΓ(r) + r ln α,  A2 = lnΓ(a+b) + lnΓ(b+x) − lnΓ(b) − lnΓ(a+b+x),
    A3 = −(r+x) ln(α+T),  A4 = ln a − ln(b+x−1) − (r+x) ln(α+t_x).
    The log-sum-exp is A3 + softplus(D) with D = A4 − A3, so it neither overflows nor underflows, and
    the weight of the "still alive at T" branch in the gradient is expit(D).
    """
    r, alpha, a, b = params
    xu = data.x_u
    bx1_u = b + np.maximum(xu, 1.0) - 1.0  # b + x - 1 where x > 0 (unused for x = 0)
    ln_at_u = np.log(alpha + data.t_u)
    # A1 + A2, per distinct x
    a12_u = (
        special.gammaln(r + xu) - special.gammaln(r) + r * np.log(alpha)
        + special.gammaln(a + b) + special.gammaln(b + xu) - special.gammaln(b) - special.gammaln(a + b + xu)
    )  # fmt: skip
    # sum of w * A3 over everyone, through the per-distinct-T weights
    sum_a3 = -(r * np.dot(data.wT_u, ln_at_u) + np.dot(data.wxT_u, ln_at_u))
    # repeat customers: D = ln a − ln(b+x−1) + (r+x)(ln(α+T) − ln(α+t_x))
    w, xi = data.w, data.x_inv
    rx = r + data.x
    ln_diff = ln_at_u[data.T_inv] - ln_at_u[data.tx_inv]  # >= 0
    d = (np.log(a) - np.log(bx1_u))[xi] + rx * ln_diff
    ll = float(np.dot(data.wx_u, a12_u) + sum_a3 + np.dot(w, np.logaddexp(0.0, d)))
    if not want_grad:
        return ll, None
    ww4 = w * special.expit(d)  # weight x P(the A4 branch)
    inv_at_u = 1.0 / (alpha + data.t_u)
    dg_ab = special.digamma(a + b)
    dg_abx_u = special.digamma(a + b + xu)
    gr_u = special.digamma(r + xu) - special.digamma(r) + np.log(alpha)
    ga_u = dg_ab - dg_abx_u
    gb_u = dg_ab + special.digamma(b + xu) - special.digamma(b) - dg_abx_u
    wx_u = data.wx_u
    g_r = np.dot(wx_u, gr_u) - np.dot(data.wT_u, ln_at_u) + np.dot(ww4, ln_diff)
    g_alpha = (
        r / alpha * data.total
        - (r * np.dot(data.wT_u, inv_at_u) + np.dot(data.wxT_u, inv_at_u))
        + np.dot(ww4 * rx, inv_at_u[data.T_inv] - inv_at_u[data.tx_inv])
    )
    g_a = np.dot(wx_u, ga_u) + ww4.sum() / a
    g_b = np.dot(wx_u, gb_u) - np.dot(np.bincount(xi, weights=ww4, minlength=xu.size), 1.0 / bx1_u)
    return ll, np.array([g_r, g_alpha, g_a, g_b])


def bgnbd_log_likelihood(params: BgNbdParams, frequency: Any, recency: Any, T: Any, weights: Any = None) -> float:
    """Total BG/NBD log-likelihood of a summary under ``params`` (e.g. the published CDNOW values)."""
    x, tx, age = _check_summary(frequency, recency, T)
    (x, tx, age), w = _check_fit_inputs((x, tx, age), weights)
    theta = np.array([params.r, params.alpha, params.a, params.b], dtype=float)
    return _bgnbd_ll_grad(theta, _BgNbdData.build(x, tx, age, w), want_grad=False)[0]


def _maximise(
    ll_grad: Callable[[np.ndarray], tuple[float, np.ndarray | None]],
    theta0: np.ndarray,
    total_weight: float,
    penalizer: float,
    range_checked: np.ndarray,
) -> tuple[np.ndarray, float, bool, str]:
    """Maximise ``ll_grad`` over positive parameters, searching on log-parameters.

    The objective is the mean negative log-likelihood plus ``penalizer * sum(theta**2)`` (the same
    scaling as lifetimes' ``penalizer_coef``). L-BFGS-B with the analytic gradient first; Nelder-Mead
    from the best point if that fails. ``converged`` also requires every parameter off the search box
    and each ``range_checked`` one inside the plausible range. Returns (theta, unpenalised total ll,
    converged, message).
    """

    def objective(log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        with np.errstate(all="ignore"):
            ll, grad = ll_grad(theta)
        value = -ll / total_weight + penalizer * float(np.sum(theta**2))
        g = -grad * theta / total_weight + 2.0 * penalizer * theta**2
        if not np.isfinite(value) or not np.all(np.isfinite(g)):
            return 1e300, np.zeros_like(log_theta)
        return value, g

    x0 = np.clip(np.log(theta0), -_LOG_BOUND + 1, _LOG_BOUND - 1)
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * x0.size
    res = optimize.minimize(
        objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
    )  # fmt: skip
    success, message, best = bool(res.success), str(res.message), res.x
    if not success or res.fun >= 1e299:
        # A bounded polish: on degenerate data (e.g. a, b running off to infinity) an
        # unbounded Nelder-Mead spends minutes for a negligible gain; the nightly job
        # must finish, and ``converged`` reports the degeneracy either way.
        nm = optimize.minimize(
            lambda z: objective(z)[0], best, method="Nelder-Mead", bounds=bounds,
            options={"maxiter": 4000, "maxfev": 800, "xatol": 1e-8, "fatol": 1e-12},
        )  # fmt: skip
        if nm.fun <= res.fun:
            best, success, message = nm.x, bool(nm.success), f"Nelder-Mead: {nm.message}"
    theta = np.exp(best)
    with np.errstate(all="ignore"):
        ll = ll_grad(theta)[0]
    on_bound = bool(np.any(np.abs(np.abs(best) - _LOG_BOUND) < 1e-3))
    implausible = bool(np.any(range_checked & (np.abs(best) > _LOG_PLAUSIBLE)))
    converged = success and np.isfinite(ll) and not on_bound and not implausible
    if on_bound or implausible:
        message = f"{message}; parameters degenerate (too little data to identify the model)"
    return theta, float(ll), bool(converged), message


def fit_bgnbd(
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    weights: Any = None,
    initial: BgNbdParams | tuple[float, float, float, float] | None = None,
    penalizer: float = 0.0,
    collapse: bool = True,
    time_unit: str = "days",
    fitted_at: dt.datetime | None = None,
) -> BgNbdParams:
    """Fit BG/NBD by maximum likelihood on every customer's (frequency, recency, T) summary.

    ``weights`` are row counts (e.g. from ``collapse_rows``). With ``collapse=True`` identical rows are
    merged first, which makes a fit over a million customers cost as much as one over the distinct
    summaries. ``time_unit`` only labels the result: it must be the unit of ``recency`` and ``T``.
    Raises ``InsufficientDataError`` when no customer has a repeat purchase.
    """
    _unit_factor(time_unit, time_unit)
    if penalizer < 0 or not np.isfinite(penalizer):
        raise ValueError("penalizer must be a non-negative number")
    x, tx, age = _check_summary(frequency, recency, T)
    (x, tx, age), w = _check_fit_inputs((x, tx, age), weights)
    if collapse:
        x, tx, age, w = collapse_rows(x, tx, age, w)
    total = float(w.sum())
    if not np.any(x > 0):
        raise InsufficientDataError(
            "BG/NBD needs at least one customer with a repeat purchase (every frequency is 0); keep the previous fit"
        )
    if initial is None:
        # Rough start: r = 1 and alpha matching the observed repeat-purchase rate.
        rate = float(np.dot(w, x)) / max(float(np.dot(w, age)), 1e-12)
        theta0 = np.array([1.0, 1.0 / max(rate, 1e-12), 1.0, 1.0])
    elif isinstance(initial, BgNbdParams):
        theta0 = np.array([initial.r, initial.alpha, initial.a, initial.b], dtype=float)
    else:
        theta0 = np.asarray(initial, dtype=float)
    if theta0.shape != (4,) or not np.all(np.isfinite(theta0)) or np.any(theta0 <= 0):
        raise ValueError("initial must be four positive numbers (r, alpha, a, b)")

    data = _BgNbdData.build(x, tx, age, w)
    theta, ll, converged, message = _maximise(
        lambda th: _bgnbd_ll_grad(th, data), theta0, total, float(penalizer), np.ones(4, dtype=bool)
    )
    r, alpha, a, b = (float(v) for v in theta)
    return BgNbdParams(
        r=r, alpha=alpha, a=a, b=b, log_likelihood=ll, n_customers=round(total), converged=converged,
        time_unit=time_unit, penalizer=float(penalizer), fitted_at=fitted_at or _utcnow(), message=message,
    )  # fmt: skip


def p_alive(params: BgNbdParams, frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + [x>0] · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))  (Fader & Hardie 2008).

    Computed as expit(−log of the odds term), so it neither overflows nor underflows; 1 when x = 0.
    """
    x, tx, age = _check_summary(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) + (r + x) * (np.log(alpha + age) - np.log(alpha + tx))
    return np.where(x > 0, special.expit(-log_odds), 1.0)


def _hyp2f1_series(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray, max_terms: int = 20000) -> np.ndarray:
    """Gauss series for 2F1 summed term by term, vectorised; accurate for |z| < 1 and c > 0."""
    total = np.ones_like(z)
    term = np.ones_like(z)
    active = np.ones(z.shape, dtype=bool)
    for k in range(max_terms):
        term = np.where(active, term * (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z, 0.0)
        total = total + term
        active &= np.abs(term) > 1e-16 * np.abs(total)
        if not active.any():
            break
    return total


def expected_purchases(params: BgNbdParams, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Expected number of purchases in the next ``t`` time units given (x, t_x, T)  (FHL 2005, eq. 10).

    E[Y(t) | x, t_x, T] = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z)]
                          · P(alive | x, t_x, T),  with z = t/(α+T+t).

    The hypergeometric term is evaluated with scipy's ``hyp2f1``; where that overflows or is not
    finite (large x makes 2F1 huge while the power term underflows), the Euler-transformed, equivalent
    form (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z) is used, and failing that its direct series.
    """
    x, tx, age = _check_summary(frequency, recency, T)
    t_arr = _as_float("t", t)
    if np.any(t_arr < 0):
        raise ValueError("t (the horizon) must be non-negative")
    t_arr, x, tx, age = np.broadcast_arrays(t_arr, x, tx, age)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-9:  # removable singularity of eq. 10 at a = 1
        a = 1.0 + 1e-9

    z = t_arr / (alpha + age + t_arr)
    log1mz = np.log1p(-z)
    big_a, big_b, big_c = r + x, b + x, a + b + x - 1.0
    with np.errstate(all="ignore"):
        # (1-z)^(r+x) * 2F1(r+x, b+x; c; z): the paper's form.
        power_hyp = np.exp(big_a * log1mz) * special.hyp2f1(big_a, big_b, big_c, z)
        bad = ~np.isfinite(power_hyp)
        if bad.any():
            alt_a, alt_b = big_c - big_a, big_c - big_b  # a+b-1-r and a-1
            euler = np.exp((a - 1.0) * log1mz) * special.hyp2f1(alt_a, alt_b, big_c, z)
            power_hyp = np.where(bad, euler, power_hyp)
            bad = ~np.isfinite(power_hyp)
            if bad.any():
                idx = np.nonzero(bad)
                series = np.exp((a - 1.0) * log1mz[idx]) * _hyp2f1_series(
                    alt_a[idx], np.broadcast_to(alt_b, z.shape)[idx], big_c[idx], z[idx]
                )
                power_hyp = power_hyp.copy()
                power_hyp[idx] = series
        expected = (big_c / (a - 1.0)) * (1.0 - power_hyp) * p_alive(params, x, tx, age)
    expected = np.where(np.isfinite(expected), expected, 0.0)
    return np.clip(expected, 0.0, None)


# --------------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _GammaGammaData:
    """Repeat customers with their x-only and data-only sums precomputed (see ``_gg_ll_grad``)."""

    xm: np.ndarray  # x * m̄ per row
    w: np.ndarray
    x_u: np.ndarray  # distinct x
    x_inv: np.ndarray
    w_u: np.ndarray  # total weight per distinct x
    sum_w: float
    sum_w_ln_m: float
    sum_wx_ln_m: float

    @classmethod
    def build(cls, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> _GammaGammaData:
        x_u, x_inv = np.unique(x, return_inverse=True)
        ln_m = np.log(m)
        return cls(
            xm=x * m, w=w, x_u=x_u, x_inv=x_inv, w_u=np.bincount(x_inv, weights=w, minlength=x_u.size),
            sum_w=float(w.sum()), sum_w_ln_m=float(np.dot(w, ln_m)), sum_wx_ln_m=float(np.dot(w * x, ln_m)),
        )  # fmt: skip


def _gg_ll_grad(params: np.ndarray, data: _GammaGammaData, want_grad: bool = True) -> tuple[float, np.ndarray | None]:
    """Weighted Gamma-Gamma log-likelihood of the mean order values (Fader & Hardie 2013) and gradient.

    f(m̄ | p, q, v, x) = Γ(px+q) / (Γ(px) Γ(q)) · v^q · m̄^(px−1) · x^(px) / (v + x m̄)^(px+q).

    The Γ terms depend on x alone and are evaluated once per distinct x; ln(v + x m̄) is the only
    per-row term that depends on the parameters.
    """
    p, q, v = params
    xu, wu = data.x_u, data.w_u
    pxu = p * xu
    ln_v = np.log(v)
    ln_vxm = np.log(v + data.xm)
    px_row = pxu[data.x_inv]
    ll_u = special.gammaln(pxu + q) - special.gammaln(pxu) - special.gammaln(q) + q * ln_v + pxu * np.log(xu)
    ll = (
        float(np.dot(wu, ll_u)) + p * data.sum_wx_ln_m - data.sum_w_ln_m
        - float(np.dot(data.w * (px_row + q), ln_vxm))
    )  # fmt: skip
    if not want_grad:
        return ll, None
    dg_u = special.digamma(pxu + q)
    w_ln_vxm = data.w * ln_vxm
    wx_u = wu * xu
    g_p = (
        float(np.dot(wx_u, dg_u - special.digamma(pxu) + np.log(xu))) + data.sum_wx_ln_m
        - float(np.dot(xu[data.x_inv], w_ln_vxm))
    )  # fmt: skip
    g_q = float(np.dot(wu, dg_u)) + data.sum_w * (ln_v - special.digamma(q)) - float(w_ln_vxm.sum())
    g_v = q / v * data.sum_w - float(np.dot(data.w * (px_row + q), 1.0 / (v + data.xm)))
    return ll, np.array([g_p, g_q, g_v])


def _check_monetary(frequency: Any, monetary_value: Any) -> tuple[np.ndarray, np.ndarray]:
    x = _as_float("frequency", frequency)
    m = _as_float("monetary_value", monetary_value)
    try:
        x, m = np.broadcast_arrays(x, m)
    except ValueError as exc:
        raise ValueError("frequency and monetary_value must have the same length") from exc
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency must be a non-negative integer count of repeat purchases")
    return x, m


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: Any, monetary_value: Any, weights: Any = None
) -> float:
    """Total Gamma-Gamma log-likelihood over the customers with x > 0 and a positive mean value."""
    x, m = _check_monetary(frequency, monetary_value)
    (x, m), w = _check_fit_inputs((x, m), weights)
    use = (x > 0) & (m > 0)
    theta = np.array([params.p, params.q, params.v], dtype=float)
    if not use.any():
        return 0.0
    return _gg_ll_grad(theta, _GammaGammaData.build(x[use], m[use], w[use]), want_grad=False)[0]


def fit_gamma_gamma(
    frequency: Any,
    monetary_value: Any,
    *,
    weights: Any = None,
    initial: GammaGammaParams | tuple[float, float, float] | None = None,
    penalizer: float = 0.0,
    fitted_at: dt.datetime | None = None,
) -> GammaGammaParams:
    """Fit Gamma-Gamma by maximum likelihood on customers with frequency > 0 and monetary_value > 0.

    Customers with x = 0 and zero or refunded (negative) mean values are left out of the fit but are
    still scored by ``expected_order_value`` (population mean). Raises ``InsufficientDataError`` when
    no customer qualifies.
    """
    if penalizer < 0 or not np.isfinite(penalizer):
        raise ValueError("penalizer must be a non-negative number")
    x, m = _check_monetary(frequency, monetary_value)
    (x, m), w = _check_fit_inputs((x, m), weights)
    use = (x > 0) & (m > 0)
    if not use.any():
        raise InsufficientDataError(
            "Gamma-Gamma needs at least one customer with a repeat purchase and a positive mean order value"
        )
    x, m, w = x[use], m[use], w[use]
    total = float(w.sum())
    sample_mean = float(np.dot(w, m) / total)
    if initial is None:
        theta0 = np.array([1.0, 2.0, sample_mean])  # population mean v p / (q - 1) = sample mean
    elif isinstance(initial, GammaGammaParams):
        theta0 = np.array([initial.p, initial.q, initial.v], dtype=float)
    else:
        theta0 = np.asarray(initial, dtype=float)
    if theta0.shape != (3,) or not np.all(np.isfinite(theta0)) or np.any(theta0 <= 0):
        raise ValueError("initial must be three positive numbers (p, q, v)")

    data = _GammaGammaData.build(x, m, w)
    theta, ll, converged, message = _maximise(
        lambda th: _gg_ll_grad(th, data), theta0, total, float(penalizer), np.array([True, True, False])
    )
    p, q, v = (float(val) for val in theta)
    uses_sample_mean = q <= 1.0
    if uses_sample_mean:
        message = f"{message}; q <= 1 (population mean undefined): using the sample mean {sample_mean:.6g}"
    return GammaGammaParams(
        p=p, q=q, v=v, log_likelihood=ll, n_customers=round(total), converged=converged,
        sample_mean=sample_mean, uses_sample_mean=uses_sample_mean, penalizer=float(penalizer),
        fitted_at=fitted_at or _utcnow(), message=message,
    )  # fmt: skip


def expected_order_value(params: GammaGammaParams, frequency: Any, monetary_value: Any) -> np.ndarray:
    """E[order value | x, m̄] = (q−1)/(px+q−1) · vp/(q−1) + px/(px+q−1) · m̄  = p (v + x m̄) / (px + q − 1).

    Customers with x = 0 or m̄ <= 0 (no usable spend history, refunds) get the population mean
    ``params.population_mean``. When the fit flagged ``uses_sample_mean`` (q <= 1) that is the sample
    mean, and a customer's own history gets full weight wherever p x + q − 1 <= 0.
    """
    x, m = _check_monetary(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    informative = (x > 0) & (m > 0)
    denom = p * x + q - 1.0
    with np.errstate(all="ignore"):
        posterior = np.where(denom > 0, p * (v + x * m) / denom, m)
    return np.where(informative, posterior, params.population_mean).astype(float)


# --------------------------------------------------------------------------------------------------
# Customer lifetime value
# --------------------------------------------------------------------------------------------------


def clv(expected_purchases_over_horizon: Any, expected_order_value: Any, margin: float = 1.0) -> np.ndarray:
    """Undiscounted CLV over the caller's horizon: expected purchases × expected order value × margin."""
    n = _as_float("expected_purchases_over_horizon", expected_purchases_over_horizon)
    value = _as_float("expected_order_value", expected_order_value)
    if not np.isfinite(margin):
        raise ValueError("margin must be finite")
    return n * value * float(margin)


def predict(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: Any,
    recency: Any,
    T: Any,
    monetary_value: Any,
    *,
    horizon: float = DEFAULT_HORIZON_DAYS,
    margin: float = 1.0,
) -> CustomerPredictions:
    """All per-customer outputs at once; ``horizon`` is in ``bgnbd.time_unit`` (90 = 90 days by default)."""
    alive = p_alive(bgnbd, frequency, recency, T)
    purchases = expected_purchases(bgnbd, horizon, frequency, recency, T)
    value = expected_order_value(gamma_gamma, frequency, monetary_value)
    return CustomerPredictions(
        p_alive=alive,
        expected_purchases=purchases,
        expected_order_value=value,
        clv=clv(purchases, value, margin),
        horizon=float(horizon),
    )
