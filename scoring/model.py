"""A tenant's lead model: fitted on its labelled leads, judged on the newest ones.

- The labelled leads are split by time: the newest ``holdout_fraction`` (by
  ``created_at``) are held out; the model is fitted on the older ones and
  judged on the held-out period against the rules baseline (the v0 score
  without its status factor, turned into a probability by a one-feature
  logistic fit on the same training period). The model that scores is then
  refitted on every labelled lead.
- Too few labels: the pooled model of the tenants that opted in, or else the
  rules score (``kind`` says which).
- A regularised logistic regression on standardised features, so every score
  splits exactly into per-feature contributions (:func:`score_leads`).
- Gradient boosting is tried beside it (``model.try_boosting``) and kept only
  where it wins on the held-out period (a higher AUC by ``boosting_margin`` and
  no worse log loss). Its trees are stumps (depth one): each splits one
  feature, so the model stays additive, one learnt curve per feature, and every
  score still splits exactly into per-feature contributions, with the same
  reasons as the regression's. Deeper trees would capture interactions at the
  price of reasons nobody could check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from scoring.config import ScoringConfig
from scoring.features import FeatureFrame, FeatureSpec, evidence_ref

TENANT_MODEL = "tenant_logreg"
BOOSTED_MODEL = "tenant_boosted"
POOLED_MODEL = "pooled_logreg"
RULES = "rules_v0"
CALIBRATION_BINS = 10
EPS = 1e-6


@dataclass(frozen=True)
class Stumps:
    """A boosted model's trees, each one split of one feature: ``x[:, feature] <=
    threshold`` adds ``left`` to the logit, otherwise ``right`` (learning rate
    applied). ``offsets`` centre each feature's curve on the training leads."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    offsets: np.ndarray

    def curves(self, x: np.ndarray) -> np.ndarray:
        """Per lead and feature: the sum of that feature's stumps, uncentred."""
        out = np.zeros(x.shape, dtype=float)
        for f, t, lo, hi in zip(self.feature, self.threshold, self.left, self.right, strict=True):
            out[:, f] += np.where(x[:, f] <= t, lo, hi)
        return out


@dataclass(frozen=True)
class FittedModel:
    """Standardisation and weights, or stumps: enough to score and explain any lead.

    For a boosted model ``coefficients`` summarise each feature's curve as a
    slope on the standardised feature (the least-squares line through its
    contributions on the training leads): its sign says which way the feature
    pushes, for the model card; the scores use the stumps themselves."""

    kind: str
    specs: tuple[FeatureSpec, ...]
    intercept: float
    coefficients: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    labels_used: int
    stumps: Stumps | None = None

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per lead and feature: the feature's share of the logit (0 for an average lead)."""
        if self.stumps is not None:
            return self.stumps.curves(x) - self.stumps.offsets
        return (x - self.means) / self.scales * self.coefficients

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + self.contributions(x).sum(axis=1)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(self.logits(x))


@dataclass(frozen=True)
class CalibrationBin:
    """One decile of predicted probability on the held-out period."""

    decile: int
    leads: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class Metrics:
    auc: float | None
    log_loss: float
    calibration: tuple[CalibrationBin, ...]

    @property
    def calibration_error(self) -> float:
        """Lead-weighted mean |predicted - observed| over the deciles (ECE)."""
        total = sum(b.leads for b in self.calibration)
        if not total:
            return float("nan")
        return sum(b.leads * abs(b.mean_predicted - b.observed_rate) for b in self.calibration) / (
            total
        )


@dataclass(frozen=True)
class Evaluation:
    """The held-out period: the model against the rules baseline."""

    model: Metrics
    rules: Metrics
    train_rows: int
    holdout_rows: int
    holdout_positives: int


@dataclass
class ModelResult:
    """What the tenant gets: a model (its own or pooled), or the rules with the reason why."""

    kind: str
    model: FittedModel | None
    evaluation: Evaluation | None
    reason: str
    label_counts: dict[str, int] = field(default_factory=dict)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def fit_logistic(
    kind: str, specs: list[FeatureSpec], x: np.ndarray, y: np.ndarray, *, regularization: float
) -> FittedModel:
    """L2-regularised logistic regression on standardised columns."""
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales = np.where(scales > 1e-12, scales, 1.0)
    z = (x - means) / scales
    from sklearn.linear_model import LogisticRegression  # imported lazily: see metrics()

    fit = LogisticRegression(C=regularization, max_iter=2000)
    fit.fit(z, y)
    return FittedModel(
        kind=kind,
        specs=tuple(specs),
        intercept=float(fit.intercept_[0]),
        coefficients=fit.coef_[0].astype(float),
        means=means,
        scales=scales,
        labels_used=int(len(y)),
    )


BOOSTING_ROUNDS = 300
BOOSTING_RATE = 0.2


def fit_boosted(
    kind: str, specs: list[FeatureSpec], x: np.ndarray, y: np.ndarray, *, min_leaf: int
) -> FittedModel:
    """Gradient-boosted stumps (log loss), read back into :class:`Stumps`: the model
    scikit-learn fitted, in a form that splits into per-feature contributions."""
    from sklearn.ensemble import GradientBoostingClassifier

    fit = GradientBoostingClassifier(
        max_depth=1,
        n_estimators=BOOSTING_ROUNDS,
        learning_rate=BOOSTING_RATE,
        min_samples_leaf=min_leaf,
        random_state=0,
    )
    fit.fit(x, y)
    features, thresholds, lefts, rights = [], [], [], []
    for tree in fit.estimators_[:, 0]:
        t = tree.tree_
        if t.node_count < 3:  # no split: a constant, folded into the base below
            continue
        features.append(int(t.feature[0]))
        thresholds.append(float(t.threshold[0]))
        lefts.append(BOOSTING_RATE * float(t.value[t.children_left[0], 0, 0]))
        rights.append(BOOSTING_RATE * float(t.value[t.children_right[0], 0, 0]))
    raw = Stumps(
        feature=np.array(features, dtype=int),
        threshold=np.array(thresholds),
        left=np.array(lefts),
        right=np.array(rights),
        offsets=np.zeros(x.shape[1]),
    )
    curves = raw.curves(x)
    # The prior's log odds and any constant trees: whatever the stumps leave of the
    # logit scikit-learn computes (the same for every lead).
    base = float(fit.decision_function(x[:1])[0] - curves[0].sum())
    offsets = curves.mean(axis=0)
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales = np.where(scales > 1e-12, scales, 1.0)
    z = (x - means) / scales
    centred = curves - offsets
    slopes = (z * centred).sum(axis=0) / np.maximum((z * z).sum(axis=0), 1e-12)
    return FittedModel(
        kind=kind,
        specs=tuple(specs),
        intercept=base + float(offsets.sum()),
        coefficients=slopes,
        means=means,
        scales=scales,
        labels_used=int(len(y)),
        stumps=Stumps(raw.feature, raw.threshold, raw.left, raw.right, offsets),
    )


def metrics(y: np.ndarray, p: np.ndarray) -> Metrics:
    """AUC (None with one class), log loss and calibration by decile of p."""
    p = np.clip(p, EPS, 1 - EPS)
    # scikit-learn costs seconds to import; only the step that fits should pay.
    from sklearn.metrics import log_loss, roc_auc_score

    auc = float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else None
    order = np.argsort(p, kind="stable")
    bins = []
    for decile, idx in enumerate(np.array_split(order, CALIBRATION_BINS), start=1):
        if len(idx) == 0:
            continue
        bins.append(CalibrationBin(decile, len(idx), float(p[idx].mean()), float(y[idx].mean())))
    return Metrics(auc=auc, log_loss=float(log_loss(y, p, labels=[0, 1])), calibration=tuple(bins))


def _rules_probability(train_scores: np.ndarray, y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The rules score as a probability: a one-feature logistic fit on the training period."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, max_iter=2000)
    fit.fit(train_scores.reshape(-1, 1), y)
    return fit.predict_proba(scores.reshape(-1, 1))[:, 1]


def label_counts(frame: FeatureFrame) -> dict[str, int]:
    labels = frame.leads["label"]
    return {
        "positive": int((labels == 1).sum()),
        "negative": int((labels == 0).sum()),
        "open": int(labels.is_null().sum()),
    }


def enough_labels(counts: dict[str, int], config: ScoringConfig) -> str | None:
    """None when the labels can train a model, else why not."""
    m = config.model
    total = counts["positive"] + counts["negative"]
    if total < m.min_labels:
        return f"{total} labelled leads, fewer than min_labels {m.min_labels}"
    if min(counts["positive"], counts["negative"]) < m.min_per_class:
        return (
            f"{counts['positive']} converted and {counts['negative']} lost leads; "
            f"each needs at least min_per_class {m.min_per_class}"
        )
    return None


def time_split(frame: FeatureFrame, holdout_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the labelled leads: (older for training, newest held out)."""
    labelled = (
        frame.leads.with_row_index("row")
        .filter(pl.col("label").is_not_null())
        .sort(["created_at", "lead_id"])
    )
    rows = labelled["row"].to_numpy()
    cut = len(rows) - max(1, math.ceil(len(rows) * holdout_fraction))
    return rows[:cut], rows[cut:]


def _fit(
    kind: str, frame: FeatureFrame, x: np.ndarray, y: np.ndarray, config: ScoringConfig
) -> FittedModel:
    if kind == BOOSTED_MODEL:
        return fit_boosted(kind, frame.specs, x, y, min_leaf=config.model.boosting_min_leaf)
    return fit_logistic(kind, frame.specs, x, y, regularization=config.model.regularization)


def evaluate(
    frame: FeatureFrame, config: ScoringConfig, *, kind: str = TENANT_MODEL
) -> Evaluation | None:
    """Fit on the older labelled leads, judge model and rules on the newest."""
    train, holdout = time_split(frame, config.model.holdout_fraction)
    x = frame.matrix.to_numpy()
    y = frame.leads["label"].to_numpy()
    rules = frame.leads["rules_score_without_status"].to_numpy().astype(float)
    if len(set(y[train].tolist())) < 2 or len(holdout) == 0:
        return None
    fitted = _fit(kind, frame, x[train], y[train].astype(int), config)
    y_hold = y[holdout].astype(int)
    return Evaluation(
        model=metrics(y_hold, fitted.probabilities(x[holdout])),
        rules=metrics(
            y_hold, _rules_probability(rules[train], y[train].astype(int), rules[holdout])
        ),
        train_rows=len(train),
        holdout_rows=len(holdout),
        holdout_positives=int(y_hold.sum()),
    )


def boosting_wins(boosted: Evaluation | None, logistic: Evaluation | None, margin: float) -> bool:
    """Boosting is kept only when it ranks the held-out leads better by ``margin``
    and its probabilities are no worse (log loss)."""
    if boosted is None or logistic is None:
        return False
    b, lr = boosted.model, logistic.model
    if b.auc is None or lr.auc is None:
        return False
    return b.auc >= lr.auc + margin and b.log_loss <= lr.log_loss


def train_tenant_model(frame: FeatureFrame, config: ScoringConfig) -> ModelResult:
    """The tenant's own model, evaluated and refitted on every label; or why not."""
    counts = label_counts(frame)
    short = enough_labels(counts, config)
    if short is not None:
        return ModelResult(
            kind=RULES, model=None, evaluation=None, reason=short, label_counts=counts
        )
    kind, evaluation = TENANT_MODEL, evaluate(frame, config)
    reason = f"{counts['positive'] + counts['negative']} labelled leads"
    if config.model.try_boosting and frame.specs:
        boosted = evaluate(frame, config, kind=BOOSTED_MODEL)
        if boosted is not None and evaluation is not None:
            verdict = (
                f"; held out, boosting AUC {boosted.model.auc:.3f} vs logistic "
                f"{evaluation.model.auc:.3f}"
            )
            if boosting_wins(boosted, evaluation, config.model.boosting_margin):
                kind, evaluation, reason = BOOSTED_MODEL, boosted, reason + verdict
            else:
                reason += verdict + ": logistic kept"
    labelled = frame.leads["label"].is_not_null().to_numpy()
    x = frame.matrix.to_numpy()[labelled]
    y = frame.leads["label"].to_numpy()[labelled].astype(int)
    return ModelResult(
        kind=kind,
        model=_fit(kind, frame, x, y, config),
        evaluation=evaluation,
        reason=reason,
        label_counts=counts,
    )


def train_pooled_model(frames: list[FeatureFrame], config: ScoringConfig) -> FittedModel | None:
    """One model on the labelled leads of every opted-in tenant (same vocabulary, no
    custom attributes), on the features every frame has."""
    if not frames:
        return None
    shared = [s for s in frames[0].specs if all(s.name in f.names for f in frames[1:])]
    names = [s.name for s in shared]
    xs, ys = [], []
    for frame in frames:
        labelled = frame.leads["label"].is_not_null().to_numpy()
        xs.append(frame.matrix.select(names).to_numpy()[labelled])
        ys.append(frame.leads["label"].to_numpy()[labelled].astype(int))
    y = np.concatenate(ys)
    if len(set(y.tolist())) < 2:
        return None
    return fit_logistic(
        POOLED_MODEL, shared, np.vstack(xs), y, regularization=config.model.regularization
    )


def _allocate_points(raw: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Integers per row, each within 1 of ``raw``, that sum exactly to ``target``
    (largest remainder: the floors, plus one for the biggest remainders)."""
    floors = np.floor(raw)
    remainder = raw - floors
    deficit = (target - floors.sum(axis=1)).astype(int)
    # rank 0 = largest remainder in the row; ties by column order
    order = np.argsort(-remainder, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(raw.shape[0])[:, None]
    ranks[rows, order] = np.arange(raw.shape[1])[None, :]
    up = ranks < deficit[:, None]
    # a negative deficit (rounding of score and base) takes one off the smallest remainders
    down_ranks = raw.shape[1] - 1 - ranks
    down = down_ranks < (-deficit)[:, None]
    return (floors + up - down).astype(int)


@dataclass(frozen=True)
class ScoredLeads:
    predictions: pl.DataFrame
    """lead_id, score_status, probability, score, base_score, fit_score, engagement_score."""
    contributions: pl.DataFrame
    """lead_id, feature, kind, label, value, contribution, points, evidence_ref (points != 0)."""


def score_leads(frame: FeatureFrame, model: FittedModel, config: ScoringConfig) -> ScoredLeads:
    """Probability, 0-100 score, fit and engagement scores and signed reasons per lead.

    score = round(100 * p). A lead's reasons are its features' logit
    contributions, scaled by the secant slope of the sigmoid between the
    average lead (the intercept, p0) and the lead (p), so they add up to
    100 * (p - p0); rounded by largest remainder they add up exactly to
    ``score - base_score``. A lead with fewer than ``min_known_signals`` known
    attributes and touch types is ``unknown``: no score, no guess.
    """
    names = [s.name for s in model.specs]
    x = frame.matrix.select(names).to_numpy() if names else np.zeros((frame.leads.height, 0))
    contrib = model.contributions(x)
    logit0 = model.intercept
    logit = logit0 + contrib.sum(axis=1)
    p0 = float(_sigmoid(np.array(logit0)))
    p = _sigmoid(logit)
    delta = logit - logit0
    slope0 = p0 * (1 - p0)
    with np.errstate(divide="ignore", invalid="ignore"):
        secant = np.where(np.abs(delta) > 1e-9, (p - p0) / delta, slope0)
    raw = 100.0 * secant[:, None] * contrib
    score = np.rint(100.0 * p).astype(int)
    base = round(100.0 * p0)
    points = _allocate_points(raw, score - base)

    kinds = np.array([s.kind for s in model.specs])
    fit_mask = kinds == "fit"
    fit_score = np.rint(100.0 * _sigmoid(logit0 + contrib[:, fit_mask].sum(axis=1))).astype(int)
    eng_score = np.rint(100.0 * _sigmoid(logit0 + contrib[:, ~fit_mask].sum(axis=1))).astype(int)

    known = frame.leads["known_signals"].to_numpy() >= config.model.min_known_signals
    lead_ids = frame.leads["lead_id"]
    predictions = pl.DataFrame(
        {
            "lead_id": lead_ids,
            "score_status": np.where(known, "scored", "unknown"),
            "probability": np.where(known, np.round(p, 6), np.nan),
            "score": np.where(known, score, -1),
            "base_score": np.full(len(p), base),
            "fit_score": np.where(known, fit_score, -1),
            "engagement_score": np.where(known, eng_score, -1),
        }
    ).with_columns(
        pl.col("probability").fill_nan(None),
        *(
            pl.when(pl.col(c) < 0).then(None).otherwise(pl.col(c)).cast(pl.Int32).alias(c)
            for c in ("score", "fit_score", "engagement_score")
        ),
        pl.col("base_score").cast(pl.Int32),
    )

    rows_idx, cols_idx = np.nonzero((points != 0) & known[:, None])
    ids = lead_ids.to_numpy()
    evidence = {(lead, feature): ref for lead, feature, ref in frame.evidence.iter_rows()}
    refs, labels = [], []
    for r, c in zip(rows_idx.tolist(), cols_idx.tolist(), strict=True):
        spec = model.specs[c]
        lead = ids[r]
        refs.append(
            evidence.get((lead, spec.name))
            if spec.kind == "engagement"
            else evidence_ref(spec, lead)
        )
        labels.append(spec.label(float(x[r, c])))
    contributions = pl.DataFrame(
        {
            "lead_id": pl.Series(ids[rows_idx], dtype=pl.String),
            "feature": pl.Series([names[c] for c in cols_idx.tolist()], dtype=pl.String),
            "kind": pl.Series(kinds[cols_idx], dtype=pl.String),
            "label": pl.Series(labels, dtype=pl.String),
            "value": pl.Series(x[rows_idx, cols_idx], dtype=pl.Float64),
            "contribution": pl.Series(np.round(contrib[rows_idx, cols_idx], 6), dtype=pl.Float64),
            "points": pl.Series(points[rows_idx, cols_idx], dtype=pl.Int32),
            "evidence_ref": pl.Series(refs, dtype=pl.String),
        }
    )
    return ScoredLeads(predictions=predictions, contributions=contributions)
