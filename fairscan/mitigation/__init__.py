"""Mitigate disparate exclusion in targeting models, and show the honest trade-off.

One interface over fairlearn's mitigators (called, not re-implemented) and fairscan's
budget allocation:

==============  ===========================================================================
method          what it does (strength that the sweep varies)
==============  ===========================================================================
threshold       fairlearn ``ThresholdOptimizer`` on the base model's scores, group-specific
                (randomised) thresholds; strength = fairlearn's ``tol`` (0 = strict)
budget          the baseline's number of offers re-allocated across groups
                (:mod:`fairscan.mitigation.budget`); strength in [0, 1] (1 = parity)
expgrad         fairlearn ``ExponentiatedGradient`` around a logistic regression;
                strength = the constraint's ratio bound (0.8 = the four-fifths rule)
gridsearch      fairlearn ``GridSearch`` (10 Lagrange multipliers) around a logistic
                regression; default = its best predictor (constraint weight 0.5); the curve
                walks the grid's predictors, strength = the multiplier
reweigh         Kamiran–Calders weights P(a)P(y)/P(a,y) on the training split, base model
                re-fitted with them; strength = exponent on the weights (1 = full)
correlation     fairlearn ``CorrelationRemover`` on the encoded features, then a logistic
                regression; strength = ``alpha`` (1 = remove all linear correlation)
==============  ===========================================================================

Honest evaluation: every method is fitted on the training split and judged on the held-out
split, with the same audit as everything else (intervals included). Randomised decisions
(ThresholdOptimizer, ExponentiatedGradient) are reported as **expected values**: each held-out
row counts as offered with its probability of being offered. With a budget every scored
method decides by the same top-K, so utility is compared at an equal number of offers.
Utility is accuracy without a budget and the number of true positives among those offered
with one; the disparity plotted on the trade-off curve is the constraint's between-groups
difference (selection rate for demographic parity, true positive rate for TPR parity,
equalized-odds difference for equalized odds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain, suggest
from fairscan.policy import FOUR_FIFTHS

__all__ = [
    "CONSTRAINTS", "DEFAULT_STRENGTH", "METHODS", "SAVEABLE", "SWEEP", "MitigationResult",
    "Point", "compare", "save_mitigated",
]

METHODS = ("threshold", "budget", "expgrad", "gridsearch", "reweigh", "correlation")
CONSTRAINTS = ("demographic_parity", "true_positive_rate_parity", "equalized_odds")
#: the strength each method uses by default, and its sweep (at most 5 points)
DEFAULT_STRENGTH: dict[str, float] = {
    "threshold": 0.0, "budget": 1.0, "expgrad": 0.8, "gridsearch": float("nan"), "reweigh": 1.0,
    "correlation": 1.0,
}
SWEEP: dict[str, tuple[float, ...]] = {
    "threshold": (0.0, 0.02, 0.05, 0.1, 0.2),
    "budget": (0.25, 0.5, 0.75, 1.0),
    "expgrad": (0.6, 0.7, 0.8, 0.9),
    "gridsearch": (5,),  # how many of the grid's own predictors to show: see _Context.gridsearch
    "reweigh": (0.25, 0.5, 0.75, 1.0),
    "correlation": (0.25, 0.5, 0.75, 1.0),
}
_HEADLINE = {"demographic_parity": "selection_rate", "true_positive_rate_parity": "true_positive_rate",
             "equalized_odds": "equalized_odds"}


@dataclass
class Point:
    """One evaluated decision rule: a method at a strength, on the held-out split."""

    method: str
    constraint: str | None
    strength: float | None
    utility: dict[str, float | None]
    disparities: list[dict[str, Any]]
    summary: dict[str, float | None]
    seconds: float = 0.0
    pareto: bool = False
    meets_policy: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from fairscan.formatting import jsonable

        return jsonable({
            "method": self.method, "constraint": self.constraint, "strength": self.strength,
            "utility": self.utility, "disparities": self.disparities, "summary": self.summary,
            "pareto": self.pareto, "meets_policy": self.meets_policy, "seconds": round(self.seconds, 3),
            "notes": self.notes,
        })


@dataclass
class MitigationResult:
    """Baseline, each method at its default strength, the sweep, and the recommendation."""

    baseline: Point
    methods: list[Point]
    curve: list[Point]
    recommended: dict[str, Any]
    meta: dict[str, Any]
    fitted: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        from fairscan.schemas import SCHEMA_VERSION

        base = self.baseline.to_dict()
        return {
            "schema_version": SCHEMA_VERSION,
            **self.meta,
            "baseline": {k: base[k] for k in ("utility", "disparities", "summary")},
            "methods": [p.to_dict() for p in self.methods],
            "curve": [p.to_dict() for p in self.curve],
            "recommended": self.recommended,
        }

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table(self) -> pd.DataFrame:
        """One row per point (baseline, methods, curve): utility, headline disparity, flags."""
        rows = []
        for kind, pts in (("baseline", [self.baseline]), ("method", self.methods), ("curve", self.curve)):
            for p in pts:
                rows.append({"kind": kind, "method": p.method, "strength": p.strength, **p.utility,
                             "disparity": p.summary.get("difference"), "ratio": p.summary.get("ratio"),
                             "selection_rate_ratio": p.summary.get("selection_rate_ratio"),
                             "pareto": p.pareto, "meets_policy": p.meets_policy})
        return pd.DataFrame(rows)


@dataclass
class _Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    a_train: np.ndarray
    a_test: np.ndarray
    idx_test: np.ndarray


def compare(
    data: pd.DataFrame,
    target: str,
    sensitive: Sequence[str] = (),
    tiers: dict[str, Any] | None = None,
    *,
    positive_label: object = None,
    model: Any = None,
    methods: str | Sequence[str] = "all",
    constraint: str = "demographic_parity",
    budget: int | float | None = None,
    sweep: bool = True,
    min_ratio: float = FOUR_FIFTHS,
    seed: int = 0,
    test_size: float = 0.3,
    n_boot: int = 200,
    dataset: str | None = None,
    drop: Sequence[str] = (),
    progress: Callable[[float, str], None] | None = None,
) -> MitigationResult:
    """Fit each mitigation on a training split and compare them on the held-out split.

    ``model``: a fitted model (or path / ``reference:NAME``) used as the base of the
    post-processing methods and the baseline; by default a reference model is trained on the
    training split (all non-target, non-sensitive columns as features). Without ``budget`` the
    baseline offers to score >= 0.5; with it, to the top K (a count or a fraction of the
    held-out rows). ``min_ratio`` is the policy the recommendation must meet: selection-rate
    ratio (min/max over groups) >= 0.8 by default. ``progress(fraction, text)`` is called
    before the base model and before each method (and its sweep), so that a long comparison
    can be followed, and cancelled between methods.
    """
    from fairscan import modeling
    from fairscan.engines.memory import MemoryEngine
    from fairscan.groups import assign_groups
    from fairscan.params import group_spec
    from fairscan.validation import binary_positive, parse_budget

    methods = list(METHODS) if methods == "all" else [methods] if isinstance(methods, str) else list(methods)
    for m in methods:
        if m not in METHODS:
            raise FairscanError(f"unknown method '{m}'{suggest(m, METHODS)}; methods: {', '.join(METHODS)}, all")
    if constraint not in CONSTRAINTS:
        raise FairscanError(f"unknown constraint '{constraint}'{suggest(constraint, CONSTRAINTS)}")
    if target not in data.columns:
        raise FairscanError(f"target column '{target}' not found{suggest(target, list(data.columns))}")
    spec = group_spec(sensitive, tiers)  # the audit's validator: at least one attribute, ...
    sensitive, tiers = list(spec.sensitive), dict(spec.tiers)
    if isinstance(min_ratio, bool) or not isinstance(min_ratio, int | float) or not 0 < min_ratio <= 1:
        raise FairscanError(f"min_ratio must be a selection-rate ratio in (0, 1], got {plain(min_ratio)}")
    budget = parse_budget(budget)
    positive = binary_positive(MemoryEngine(data), target, positive_label, "label", "--positive-label")
    groups = assign_groups(data, sensitive, tiers, intersect=len(spec.columns()) > 1)
    attr = groups.columns[-1]  # the single attribute, or the intersection of several
    a = groups[attr].astype(str).to_numpy()
    y = (data[target] == positive).to_numpy()

    card = None
    if model is not None and not hasattr(model, "predict_proba"):
        model, card, _ = modeling.open_model(model)
    group_cols = spec.columns()
    features = modeling.model_features(model, card) if model is not None else None
    if features is None:
        features = [c for c in data.columns if c != target and c not in group_cols and c not in drop]
    split = _split(data, features, y, a, seed, test_size)

    note = progress or (lambda fraction, text: None)
    # each method's share of the work, from its measured cost on bank (the in-processing
    # methods fit many models; post-processing reuses the base model's scores)
    weight = {m: _COST.get(m, 1.0) for m in methods}
    done, total = _COST["base"], _COST["base"] + sum(weight.values())
    note(0.0, "fitting the base model" if model is None else "scoring with the model")
    t0 = time.perf_counter()
    base_scores_train, base_scores, base = _base_model(model, split, seed)
    k = None
    if budget is not None:
        from fairscan.validation import resolve_budget

        k = resolve_budget(budget, len(split.y_test))
    base_decisions = _decide(base_scores, k)
    ctx = _Context(split, base, base_scores, base_scores_train, k, constraint, seed, n_boot, attr)
    baseline = ctx.evaluate("baseline", None, None, base_decisions, base_scores, time.perf_counter() - t0)

    runners = {"threshold": ctx.threshold, "budget": ctx.budget, "expgrad": ctx.expgrad,
               "gridsearch": ctx.gridsearch, "reweigh": ctx.reweigh, "correlation": ctx.correlation}
    points, curve = [], []
    for i, m in enumerate(methods):
        head = f"method {i + 1} of {len(methods)}: {m}"
        note(done / total, head + (" and its sweep" if sweep and SWEEP[m] else ""))
        ctx.step = lambda j, n, st, head=head, at=done, w=weight[m]: note(
            (at + w * j / n) / total, f"{head}, setting {j + 1} of {n} (strength {st:g})")
        default, swept = runners[m](SWEEP[m] if sweep else ())
        points.append(default)
        curve += swept
        done += weight[m]
    note(1.0, f"compared {len(methods)} method(s)")
    everything = [baseline, *points, *curve]
    _mark(everything, min_ratio, k is not None)
    recommended = _recommend(baseline, points + curve, min_ratio, k is not None)
    meta = {
        "target": target, "positive_label": positive.item() if isinstance(positive, np.generic) else positive,
        "attribute": attr, "constraint": constraint,
        "budget": k, "n_train": len(split.y_train), "n_test": len(split.y_test), "seed": seed,
        "policy": {"selection_rate_ratio_min": min_ratio},
        "utility_metric": "true_positives" if k is not None else "accuracy",
        "headline_metric": _HEADLINE[constraint],
        "randomised_decisions": "expected values (each held-out row counts with its probability of an offer)",
        "base_model": "given" if model is not None else "HistGradientBoostingClassifier, calibrated (reference)",
        "inprocessing_estimator": "LogisticRegression, Newton-Cholesky (one-hot categoricals, scaled numerics)",
        "dataset": dataset,
    }
    return MitigationResult(baseline, points, curve, recommended, meta, ctx.fitted)


#: relative cost of the base model and of each method with its sweep (bank, 2 cores): what the
#: progress fraction advances by
_COST = {"base": 2.0, "threshold": 1.0, "budget": 0.2, "expgrad": 5.0, "gridsearch": 1.0, "reweigh": 4.0,
         "correlation": 0.5}


def _split(data: pd.DataFrame, features: list[str], y: np.ndarray, a: np.ndarray, seed: int,
           test_size: float) -> _Split:
    from fairscan.datasets import holdout_split

    missing = [c for c in features if c not in data.columns]
    if missing:
        raise FairscanError(f"the data lacks feature column(s) the model needs: {', '.join(missing[:10])}")
    tr, te = holdout_split(y, test_size, seed)
    X = data[features]
    return _Split(X.iloc[tr], X.iloc[te], y[tr], y[te], a[tr], a[te], te)


def _base_model(model: Any, s: _Split, seed: int) -> tuple[np.ndarray, np.ndarray, Any]:
    from sklearn.calibration import CalibratedClassifierCV

    from fairscan import modeling

    if model is None:
        model = CalibratedClassifierCV(modeling._pipeline(s.X_train, "gbm", seed), method="isotonic", cv=3)
        model.fit(s.X_train, s.y_train)
    return modeling.score(model, s.X_train), modeling.score(model, s.X_test), model


def _decide(scores: np.ndarray, k: int | None) -> np.ndarray:
    """Offer probability per row: top-K by score with a budget, else score >= 0.5."""
    if k is None:
        return (scores >= 0.5).astype(float)
    from fairscan.engines.memory import top_k_mask

    return top_k_mask(np.asarray(scores, dtype=float), k).astype(float)


class _Context:
    """Shared state of one comparison: the split, the base model, the evaluation.

    ``attribute`` is the audited attribute's name (``sex``, a tier's column, ``sex x balance``):
    the evaluation audits a column of that name, so every disparity names it as the audit does.
    """

    def __init__(self, s: _Split, base: Any, scores: np.ndarray, scores_train: np.ndarray, k: int | None,
                 constraint: str, seed: int, n_boot: int, attribute: str) -> None:
        self.s, self.base, self.scores, self.scores_train = s, base, scores, scores_train
        self.k, self.constraint, self.seed, self.n_boot = k, constraint, seed, n_boot
        self.attribute = attribute
        self.fitted: dict[str, Any] = {}
        #: told (index, count, strength) before each fit of a method's sweep
        self.step: Callable[[int, int, float], None] = lambda j, n, strength: None
        self._encoded: tuple[Any, np.ndarray, np.ndarray] | None = None

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, method: str, constraint: str | None, strength: float | None, offer: np.ndarray,
                 scores: np.ndarray | None, seconds: float, notes: Sequence[str] = ()) -> Point:
        from sklearn.metrics import roc_auc_score

        from fairscan.audit import audit

        y, a = self.s.y_test, self.s.a_test
        offer = np.clip(np.asarray(offer, dtype=float), 0, 1)
        utility = {
            "roc_auc": float(roc_auc_score(y, scores)) if scores is not None else None,
            "accuracy": float(np.mean(offer * y + (1 - offer) * (1 - y))),
            "true_positives": float(np.sum(offer * y)),
            "selected": float(np.sum(offer)),
        }
        # the groups' column is named after the attribute; the others must not take its name
        attr = self.attribute
        yc, dc, wc = ("y", "d", "w") if attr not in ("y", "d", "w") else ("y_", "d_", "w_")
        frac = (offer > 0) & (offer < 1)
        if frac.any():  # expected values: split each fractional row into offered / not offered
            rows = np.r_[np.arange(len(y)), np.flatnonzero(frac)]
            d = np.r_[offer > 0, np.zeros(int(frac.sum()), dtype=bool)]
            w = np.r_[np.where(frac, offer, 1.0), 1 - offer[frac]]
            frame = pd.DataFrame({yc: y[rows], dc: d, wc: w, attr: a[rows]})
            r = audit(frame, target=yc, prediction=dc, sensitive=attr, weights=wc, n_boot=self.n_boot,
                      seed=self.seed)
        else:
            frame = pd.DataFrame({yc: y, dc: offer > 0, attr: a})
            r = audit(frame, target=yc, prediction=dc, sensitive=attr, n_boot=self.n_boot, seed=self.seed)
        disparities = r.to_dict()["disparities"]
        summ = r.summary.set_index("metric")
        headline = _HEADLINE[self.constraint]
        summary = {
            "metric": headline,
            "difference": _f(summ.loc[headline, "difference"]),
            "ratio": _f(summ.loc[headline, "ratio"]),
            "selection_rate_ratio": _f(summ.loc["selection_rate", "ratio"]),
            "selection_rate_difference": _f(summ.loc["selection_rate", "difference"]),
        }
        return Point(method, constraint, strength, utility, disparities, summary, seconds, notes=list(notes))

    # -- methods -------------------------------------------------------------------------
    def _run(self, name: str, one: Any, strengths: Sequence[float]) -> tuple[Point, list[Point]]:
        """The method at its default strength, and at each swept strength (reusing the default);
        ``self.step`` is told before each fit."""
        first = DEFAULT_STRENGTH[name]
        todo = [first, *(st for st in strengths if st != first)]
        done: dict[float, Point] = {}
        for j, st in enumerate(todo):
            self.step(j, len(todo), st)
            done[st] = one(st)
        return done[first], [done[st] for st in strengths]

    def threshold(self, strengths: Sequence[float]) -> tuple[Point, list[Point]]:
        from fairlearn.postprocessing import ThresholdOptimizer

        for g in np.unique(self.s.a_train):  # fairlearn refuses a group whose labels are all alike
            labels = np.unique(self.s.y_train[self.s.a_train == g])
            if len(labels) < 2:
                raise FairscanError(
                    f"group {plain(str(g))} has only {'positive' if labels[0] else 'negative'} outcomes in the "
                    "training split, so group thresholds cannot be fitted for it: use larger groups (fewer tiers, "
                    "no intersection) or another method (--method budget)")

        # the base model's scores of both splits are known: the sweep re-uses them instead of
        # scoring the base model again for every fit and prediction
        prefit = _prefit(self.base, known=[(self.s.X_train, self.scores_train), (self.s.X_test, self.scores)])

        def one(tol: float) -> Point:
            t = time.perf_counter()
            to = ThresholdOptimizer(estimator=prefit, constraints=self.constraint,
                                    objective="accuracy_score", prefit=True, predict_method="predict_proba",
                                    tol=tol or None)
            to.fit(self.s.X_train, self.s.y_train, sensitive_features=self.s.a_train)
            offer = to._pmf_predict(self.s.X_test, sensitive_features=self.s.a_test)[:, 1]
            notes = ["decisions are randomised at group thresholds: expected values"]
            if self.k is not None:
                notes.append(f"ThresholdOptimizer cannot hold a budget: it offers {offer.sum():.0f}, not {self.k}")
            if tol == DEFAULT_STRENGTH["threshold"]:
                self.fitted["threshold"] = to
            return self.evaluate("threshold", self.constraint, tol, offer, None, time.perf_counter() - t, notes)

        return self._run("threshold", one, strengths)

    def budget(self, strengths: Sequence[float]) -> tuple[Point, list[Point]]:
        from fairscan.mitigation.budget import allocate

        k = self.k if self.k is not None else int((self.scores >= 0.5).sum())
        c = "demographic_parity" if self.constraint == "demographic_parity" else "true_positive_rate_parity"

        def one(st: float) -> Point:
            t = time.perf_counter()
            offer = allocate(self.scores, self.s.a_test, k, c, st).astype(float)
            rule = "exact quotas" if c == "demographic_parity" else "greedy on calibrated probabilities"
            notes = [f"exactly {k} offers ({rule})"]
            if self.constraint == "equalized_odds":
                notes.append("under a budget only the true positive rates are equalised (equal opportunity)")
            return self.evaluate("budget", self.constraint, st, offer, None, time.perf_counter() - t, notes)

        return self._run("budget", one, strengths)

    def _encode(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """Features as a numeric matrix for the in-processing estimators (fit on train)."""
        if self._encoded is None:
            from fairscan import modeling

            pre = modeling._pipeline(self.s.X_train, "logistic", self.seed).steps[0][1]
            Xtr = pre.fit_transform(self.s.X_train)
            self._encoded = (pre, np.asarray(Xtr, dtype=float), np.asarray(pre.transform(self.s.X_test), dtype=float))
        return self._encoded

    def _moment(self, ratio_bound: float | None = None) -> Any:
        from fairlearn.reductions import DemographicParity, EqualizedOdds, TruePositiveRateParity

        cls = {"demographic_parity": DemographicParity, "true_positive_rate_parity": TruePositiveRateParity,
               "equalized_odds": EqualizedOdds}[self.constraint]
        return cls(ratio_bound=ratio_bound) if ratio_bound is not None else cls()

    def _scored(self, method: str, strength: float, scores: np.ndarray, seconds: float,
                offer: np.ndarray | None = None, notes: Sequence[str] = ()) -> Point:
        """Evaluate a scoring method: top-K of its scores with a budget, else its own decisions."""
        if self.k is not None or offer is None:
            offer = _decide(scores, self.k)
        return self.evaluate(method, self.constraint, strength, offer, scores, seconds, notes)

    def expgrad(self, strengths: Sequence[float]) -> tuple[Point, list[Point]]:
        from fairlearn.reductions import ExponentiatedGradient

        _, Xtr, Xte = self._encode()

        def one(bound: float) -> Point:
            t = time.perf_counter()
            eg = ExponentiatedGradient(_logistic(), self._moment(ratio_bound=bound))
            eg.fit(Xtr, self.s.y_train, sensitive_features=self.s.a_train)
            p = eg._pmf_predict(Xte)[:, 1]
            return self._scored("expgrad", bound, p, time.perf_counter() - t, offer=p,
                                notes=[f"ratio bound {bound:g}; randomised classifier: expected values"])

        return self._run("expgrad", one, strengths)

    def gridsearch(self, strengths: Sequence[float]) -> tuple[Point, list[Point]]:
        from fairlearn.reductions import GridSearch

        _, Xtr, Xte = self._encode()
        t = time.perf_counter()
        gs = GridSearch(_logistic(), self._moment(), constraint_weight=0.5, grid_size=10)
        gs.fit(Xtr, self.s.y_train, sensitive_features=self.s.a_train)
        seconds = time.perf_counter() - t
        lambdas = gs.lambda_vecs_

        def at(i: int, note: str) -> Point:
            lam = lambdas.iloc[:, i]
            strength = float(lam.abs().max())  # the size of the Lagrange multiplier
            p = gs.predictors_[i].predict_proba(Xte)[:, 1]
            return self._scored("gridsearch", strength, p, seconds if note == "best" else 0.0,
                                notes=[f"{note} predictor of a 10-point Lagrange grid (multiplier {strength:.3g})"])

        best = at(int(gs.best_idx_), "best")
        from sklearn.pipeline import Pipeline

        self.fitted["gridsearch"] = Pipeline([("features", self._encode()[0]),
                                              ("model", gs.predictors_[int(gs.best_idx_)])])
        if not strengths:
            return best, []
        order = np.argsort([float(lambdas.iloc[:, i].abs().max()) for i in range(lambdas.shape[1])])
        picks = sorted(set(np.linspace(0, len(order) - 1, min(int(strengths[0]), len(order))).round().astype(int)))
        return best, [best if order[j] == gs.best_idx_ else at(int(order[j]), "grid") for j in picks]

    def reweigh(self, strengths: Sequence[float]) -> tuple[Point, list[Point]]:
        from fairscan import modeling

        a, y = self.s.a_train, self.s.y_train
        frame = pd.DataFrame({"a": a, "y": y})
        p_a = frame["a"].map(frame["a"].value_counts(normalize=True))
        p_y = frame["y"].map(frame["y"].value_counts(normalize=True))
        p_ay = frame.groupby(["a", "y"])["y"].transform("size") / len(frame)
        weights = (p_a * p_y / p_ay).to_numpy()

        def one(st: float) -> Point:
            t = time.perf_counter()
            pipe = modeling._pipeline(self.s.X_train, "gbm", self.seed)
            pipe.fit(self.s.X_train, y, model__sample_weight=weights ** st)
            p = pipe.predict_proba(self.s.X_test)[:, 1]
            if st == DEFAULT_STRENGTH["reweigh"]:
                self.fitted["reweigh"] = pipe
            return self._scored("reweigh", st, p, time.perf_counter() - t,
                                notes=["Kamiran-Calders weights; the re-fitted model is not re-calibrated"])

        return self._run("reweigh", one, strengths)

    def correlation(self, strengths: Sequence[float]) -> tuple[Point, list[Point]]:
        from fairlearn.preprocessing import CorrelationRemover

        _, Xtr, Xte = self._encode()
        levels = sorted(set(self.s.a_train))
        onehot = lambda a: (np.asarray(a)[:, None] == np.asarray(levels)[None, :]).astype(float)  # noqa: E731
        ids = list(range(Xtr.shape[1], Xtr.shape[1] + len(levels)))
        Ztr, Zte = np.c_[Xtr, onehot(self.s.a_train)], np.c_[Xte, onehot(self.s.a_test)]

        def one(alpha: float) -> Point:
            t = time.perf_counter()
            cr = CorrelationRemover(sensitive_feature_ids=ids, alpha=alpha)
            clf = _logistic().fit(cr.fit_transform(Ztr), self.s.y_train)
            p = clf.predict_proba(cr.transform(Zte))[:, 1]
            return self._scored("correlation", alpha, p, time.perf_counter() - t,
                                notes=["features decorrelated from the groups, then a logistic regression"])

        return self._run("correlation", one, strengths)


SAVEABLE = ("reweigh", "gridsearch")


def save_mitigated(result: MitigationResult, method: str | None, out_dir: Any) -> Any:
    """Save a mitigated model like a trained one: model.skops and a card recording the
    mitigation. Only methods that yield a self-contained scikit-learn model can be saved
    (reweigh, gridsearch); group thresholds and quotas need the sensitive attribute at
    decision time, so they are reported, not saved as models."""
    import hashlib
    import json
    from pathlib import Path

    import skops.io as sio

    from fairscan import modeling
    from fairscan.version import __version__

    method = method or result.recommended.get("method")
    if method in (None, "none"):
        raise FairscanError("no mitigation was recommended, so there is nothing to save; choose one with "
                            f"--method ({', '.join(SAVEABLE)})")
    if method not in SAVEABLE or method not in result.fitted:
        raise FairscanError(
            f"cannot save the '{method}' mitigation as a model (it decides with the sensitive attribute at "
            f"decision time); savable methods: {', '.join(SAVEABLE)}"
        )
    out = Path(out_dir)
    point = next(p for p in result.methods if p.method == method)
    try:
        out.mkdir(parents=True, exist_ok=True)
        sio.dump(result.fitted[method], out / modeling.MODEL_FILE)
        card = {
            "name": f"{result.meta.get('dataset') or 'model'}-{method}",
            "target": result.meta["target"], "positive_label": result.meta["positive_label"],
            "features": list(getattr(result.fitted[method], "feature_names_in_", [])),
            "sensitive": [result.meta["attribute"]],
            "metrics": {k: v for k, v in point.utility.items() if v is not None},
            "mitigation": {"method": method, "constraint": point.constraint, "strength": point.strength,
                           "held_out_summary": point.summary},
            "seed": result.meta["seed"], "fairscan_version": __version__,
            "model_sha256": hashlib.sha256((out / modeling.MODEL_FILE).read_bytes()).hexdigest(),
        }
        (out / modeling.CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as e:
        raise FairscanError(f"cannot write the model to '{out}': {e.strerror}") from None
    return out


def _logistic() -> Any:
    """The in-processing methods' estimator: an L2 logistic regression fitted by Newton's
    method (Cholesky), which reaches the optimum in a few steps on a few dozen encoded
    features where L-BFGS takes dozens (ExponentiatedGradient fits it once per iteration)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(solver="newton-cholesky", max_iter=100)


def _prefit(model: Any, known: Sequence[tuple[Any, np.ndarray]] = ()) -> Any:
    """Any fitted model as a scikit-learn classifier of the positive-class probability.

    ``known``: (frame, its scores) pairs already computed; the same frame object is not
    scored again."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Prefit(ClassifierMixin, BaseEstimator):
        def __init__(self, model: Any = None) -> None:
            self.model = model

        def fit(self, X: Any, y: Any) -> Any:
            return self

        def predict_proba(self, X: Any) -> np.ndarray:
            from fairscan import modeling

            p = next((s for frame, s in known if frame is X), None)
            if p is None:
                p = modeling.score(self.model, X)
            return np.c_[1 - p, p]

        def predict(self, X: Any) -> np.ndarray:
            return self.predict_proba(X)[:, 1] >= 0.5

        def __sklearn_is_fitted__(self) -> bool:
            return True

    est = Prefit(model)
    est.classes_ = np.array([False, True])
    return est


def _f(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _utility(p: Point, budgeted: bool) -> float:
    return p.utility["true_positives"] if budgeted else p.utility["accuracy"]


def _mark(points: list[Point], min_ratio: float, budgeted: bool) -> None:
    """Pareto front of utility (higher is better) against the headline disparity (lower)."""
    for p in points:
        sr = p.summary.get("selection_rate_ratio")
        p.meets_policy = sr is not None and sr >= min_ratio
        d = p.summary.get("difference")
        if d is None:
            continue
        u = _utility(p, budgeted)
        p.pareto = not any(
            q is not p and q.summary.get("difference") is not None
            and _utility(q, budgeted) >= u and q.summary["difference"] <= d
            and (_utility(q, budgeted) > u or q.summary["difference"] < d)
            for q in points
        )


def _recommend(baseline: Point, candidates: list[Point], min_ratio: float, budgeted: bool) -> dict[str, Any]:
    """The least costly method that meets the policy (highest utility among those that do)."""
    name = "true positives among those offered" if budgeted else "accuracy"
    if baseline.meets_policy:
        return {"method": "none", "strength": None,
                "why": f"the unmitigated model already meets the policy (selection-rate ratio "
                       f"{baseline.summary['selection_rate_ratio']:.2f} >= {min_ratio:g})"}
    ok = [p for p in candidates if p.meets_policy]
    if not ok:
        return {"method": None, "strength": None,
                "why": f"no method at the tried strengths meets selection-rate ratio >= {min_ratio:g}; "
                       "try stronger settings or a different constraint"}
    best = max(ok, key=lambda p: _utility(p, budgeted))
    cost = _utility(baseline, budgeted) - _utility(best, budgeted)
    change = f"{abs(cost):.4g} {'less' if cost > 0 else 'more'} than the unmitigated model"
    return {
        "method": best.method, "strength": best.strength,
        "why": f"meets selection-rate ratio >= {min_ratio:g} ({best.summary['selection_rate_ratio']:.2f}) with the "
               f"highest {name} among the settings that do ({_utility(best, budgeted):.4g}; {change})",
    }
