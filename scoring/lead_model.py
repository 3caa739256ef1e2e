"""One tenant's lead model run, end to end: features, fit (own, pooled or rules),
scores and reasons, and the tables written back for dbt.

:func:`fit_and_score` is pure (frames in, frames out): the benchmark and the
tests call it directly. :func:`run_lead_model` adds the warehouse I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from core.settings import Settings
from core.tenancy import check_tenant_id
from scoring.config import ScoringConfig, configured_tenants, load_config
from scoring.features import FeatureFrame, build_features
from scoring.model import (
    POOLED_MODEL,
    RULES,
    Evaluation,
    FittedModel,
    ModelResult,
    enough_labels,
    evaluate,
    label_counts,
    score_leads,
    train_pooled_model,
    train_tenant_model,
)
from scoring.store import read_inputs, write_outputs


@dataclass
class LeadModelOutput:
    """Everything one run produced for one tenant: the tables and the summary."""

    tenant_id: str
    result: ModelResult
    frame: FeatureFrame
    model_version: str
    config_version: str
    tables: dict[str, pl.DataFrame]

    def summary(self) -> dict[str, object]:
        ev = self.result.evaluation
        return {
            "model_kind": self.result.kind,
            "model_version": self.model_version,
            "config_version": self.config_version,
            "reason": self.result.reason,
            "labels": self.result.label_counts,
            "features": len(self.result.model.specs) if self.result.model else 0,
            "auc": ev.model.auc if ev else None,
            "rules_auc": ev.rules.auc if ev else None,
        }


def model_version(kind: str, model: FittedModel | None, config_version: str) -> str:
    """A digest of what scores: the same data and configuration give the same version
    on either warehouse, a new fit with other weights a new one."""
    payload: dict[str, object] = {"kind": kind, "config": config_version}
    if model is not None:
        payload["features"] = [s.name for s in model.specs]
        payload["weights"] = [round(float(w), 6) for w in model.coefficients]
        payload["intercept"] = round(model.intercept, 6)
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]
    return f"{kind}-{digest}"


def pooled_frames(
    inputs: dict[str, tuple[pl.DataFrame, pl.DataFrame, ScoringConfig]],
) -> tuple[list[FeatureFrame], dict[str, tuple[str, ...]]]:
    """The opted-in tenants' frames on one shared vocabulary, custom attributes left out."""
    vocabulary: dict[str, tuple[str, ...]] = {}
    for column in ("industry", "source"):
        seen: dict[str, int] = {}
        for leads, _, _ in inputs.values():
            for value in leads[column].drop_nulls().to_list():
                seen[value] = seen.get(value, 0) + 1
        vocabulary[column] = tuple(sorted(v for v, n in seen.items() if n >= 5))
    frames = [
        build_features(leads, touches, config, custom=False, vocabulary=vocabulary)
        for leads, touches, config in inputs.values()
    ]
    return frames, vocabulary


def fit_and_score(
    tenant_id: str,
    leads: pl.DataFrame,
    touches: pl.DataFrame,
    config: ScoringConfig,
    *,
    pooled: dict[str, tuple[pl.DataFrame, pl.DataFrame, ScoringConfig]] | None = None,
    trained_at: datetime | None = None,
    run_id: str = "",
) -> LeadModelOutput:
    """Featurise, fit (or fall back), score and explain one tenant's leads.

    ``pooled``: the opted-in tenants' inputs (this tenant's included or not),
    used only when this tenant has too few labels and has opted in itself.
    """
    trained_at = trained_at or datetime.now(UTC)
    frame = build_features(leads, touches, config)
    result = train_tenant_model(frame, config)
    scoring_frame = frame
    if result.model is None and config.model.pooled_opt_in and pooled:
        others = {t: v for t, v in pooled.items() if t != tenant_id}
        frames, vocabulary = pooled_frames({**others, tenant_id: (leads, touches, config)})
        pooled_model = train_pooled_model(frames, config)
        counts = {
            "positive": sum(label_counts(f)["positive"] for f in frames),
            "negative": sum(label_counts(f)["negative"] for f in frames),
            "open": 0,
        }
        if pooled_model is not None and enough_labels(counts, config) is None:
            scoring_frame = frames[-1]
            result = ModelResult(
                kind=POOLED_MODEL,
                model=pooled_model,
                evaluation=_pooled_evaluation(scoring_frame, config),
                reason=f"{result.reason}; pooled over {len(frames)} opted-in tenants "
                f"({pooled_model.labels_used} labelled leads)",
                label_counts=result.label_counts,
            )
    config_version = config.config_version
    version = model_version(result.kind, result.model, config_version)
    tables = _tables(tenant_id, result, scoring_frame, config, version, trained_at, run_id)
    return LeadModelOutput(tenant_id, result, scoring_frame, version, config_version, tables)


def _pooled_evaluation(frame: FeatureFrame, config: ScoringConfig) -> Evaluation | None:
    """A tenant on the pooled model is judged on its own held-out period when it can be."""
    counts = label_counts(frame)
    if min(counts["positive"], counts["negative"]) < 2:
        return None
    return evaluate(frame, config, kind=POOLED_MODEL)


def _tables(
    tenant_id: str,
    result: ModelResult,
    frame: FeatureFrame,
    config: ScoringConfig,
    version: str,
    trained_at: datetime,
    run_id: str,
) -> dict[str, pl.DataFrame]:
    ev = result.evaluation
    model = result.model
    counts = result.label_counts
    th = config.thresholds
    scored = score_leads(frame, model, config) if model is not None else None
    base = (
        int(scored.predictions["base_score"][0]) if scored and scored.predictions.height else None
    )
    tables: dict[str, pl.DataFrame] = {
        "models": pl.DataFrame(
            [
                {
                    "tenant_id": tenant_id,
                    "model_version": version,
                    "model_kind": result.kind,
                    "config_version": config.config_version,
                    "trained_at": trained_at,
                    "reason": result.reason,
                    "intercept": model.intercept if model else None,
                    "base_score": base,
                    "labels_positive": counts.get("positive", 0),
                    "labels_negative": counts.get("negative", 0),
                    "labels_open": counts.get("open", 0),
                    "labels_used": model.labels_used if model else 0,
                    "train_rows": ev.train_rows if ev else None,
                    "holdout_rows": ev.holdout_rows if ev else None,
                    "holdout_positives": ev.holdout_positives if ev else None,
                    "auc": ev.model.auc if ev else None,
                    "log_loss": ev.model.log_loss if ev else None,
                    "calibration_error": ev.model.calibration_error if ev else None,
                    "rules_auc": ev.rules.auc if ev else None,
                    "rules_log_loss": ev.rules.log_loss if ev else None,
                    "rules_calibration_error": ev.rules.calibration_error if ev else None,
                    "grade_a": th.grade_a,
                    "grade_b": th.grade_b,
                    "grade_c": th.grade_c,
                    "mql_threshold": th.mql,
                    "run_id": run_id,
                }
            ],
            schema_overrides={"trained_at": pl.Datetime("us", "UTC")},
            strict=False,
        ),
        "custom_attributes": pl.DataFrame(
            {
                "tenant_id": [tenant_id] * len(frame.custom),
                "attribute": [d.attribute for d in frame.custom],
                "decision": [d.decision for d in frame.custom],
                "reason": [d.reason for d in frame.custom],
            },
            schema=dict.fromkeys(("tenant_id", "attribute", "decision", "reason"), pl.String),
        ),
    }
    if model is not None:
        tables["features"] = pl.DataFrame(
            {
                "tenant_id": [tenant_id] * len(model.specs),
                "model_version": [version] * len(model.specs),
                "feature": [s.name for s in model.specs],
                "kind": [s.kind for s in model.specs],
                "source_column": [s.column for s in model.specs],
                "coefficient": np.round(model.coefficients, 6),
                "mean": np.round(model.means, 6),
                "scale": np.round(model.scales, 6),
            }
        )
    if ev is not None:
        tables["calibration"] = pl.DataFrame(
            [
                {
                    "tenant_id": tenant_id,
                    "model_version": version,
                    "scorer": scorer,
                    "decile": b.decile,
                    "leads": b.leads,
                    "mean_predicted": b.mean_predicted,
                    "observed_rate": b.observed_rate,
                }
                for scorer, m in (("model", ev.model), ("rules", ev.rules))
                for b in m.calibration
            ]
        )
    if scored is not None:
        tables["predictions"] = scored.predictions.with_columns(
            tenant_id=pl.lit(tenant_id), model_version=pl.lit(version)
        )
        tables["contributions"] = scored.contributions.with_columns(tenant_id=pl.lit(tenant_id))
    return tables


def opted_in_tenants(config_dir_tenants: list[str] | None = None) -> list[str]:
    """Tenants whose configuration opts into the pooled model."""
    tenants = configured_tenants() if config_dir_tenants is None else config_dir_tenants
    return [t for t in tenants if load_config(t).model.pooled_opt_in]


def run_lead_model(settings: Settings, tenant_id: str, *, run_id: str = "") -> LeadModelOutput:
    """Read the tenant's features from the warehouse, fit and score, write the tables back."""
    tenant_id = check_tenant_id(tenant_id)
    config = load_config(tenant_id)
    leads, touches = read_inputs(settings, [tenant_id])
    pooled = None
    if config.model.pooled_opt_in:
        # the pooled model is read only when needed: most tenants have labels of their own
        counts = {
            "positive": int((leads["label"] == 1).sum()),
            "negative": int((leads["label"] == 0).sum()),
            "open": 0,
        }
        if enough_labels(counts, config) is not None:
            others = [t for t in opted_in_tenants() if t != tenant_id]
            if others:
                all_leads, all_touches = read_inputs(settings, others)
                pooled = {
                    t: (
                        all_leads.filter(pl.col("tenant_id") == t),
                        all_touches.filter(pl.col("tenant_id") == t),
                        load_config(t),
                    )
                    for t in others
                    # a tenant whose leads have not reached the warehouse yet lends none
                    if not all_leads.filter(pl.col("tenant_id") == t).is_empty()
                }
    output = fit_and_score(tenant_id, leads, touches, config, pooled=pooled, run_id=run_id)
    write_outputs(settings, tenant_id, output.tables)
    return output


__all__ = ["RULES", "LeadModelOutput", "fit_and_score", "run_lead_model"]
