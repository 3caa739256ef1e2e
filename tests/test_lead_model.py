"""The lead model as plain functions: configuration, features, fit, reasons, fallbacks.

Runs on the planted-signal lead set (sandbox/lead_outcomes.py) of a few thousand
leads; one set and one fit are shared by the module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from sandbox.lead_outcomes import LeadSet, lead_set
from scoring.config import (
    ScoringConfig,
    ScoringConfigError,
    configured_tenants,
    load_config,
    parse_config,
)
from scoring.features import build_features, decayed_touches
from scoring.lead_model import fit_and_score
from scoring.model import (
    BOOSTED_MODEL,
    BOOSTING_RATE,
    BOOSTING_ROUNDS,
    POOLED_MODEL,
    RULES,
    TENANT_MODEL,
    fit_boosted,
    score_leads,
    train_tenant_model,
)
from scoring.store import TABLES

SOURCES_YML = (
    Path(__file__).resolve().parent.parent
    / "dbt"
    / "models"
    / "marts"
    / "leads"
    / "_lead_model__sources.yml"
)
CALIBRATION_TOLERANCE = 0.06
"""Largest lead-weighted mean |predicted - observed| over held-out deciles we accept."""


def config(**overrides: object) -> ScoringConfig:
    data: dict[str, object] = {"version": 1, **overrides}
    return ScoringConfig.model_validate(data)


@pytest.fixture(scope="module")
def leads() -> LeadSet:
    return lead_set(leads=3000, seed=7)


@pytest.fixture(scope="module")
def fitted(leads: LeadSet):
    cfg = config()
    output = fit_and_score("t-synth", leads.leads, leads.touches, cfg)
    return cfg, output


# -- configuration -------------------------------------------------------------


def test_every_tenant_file_and_the_default_are_valid():
    assert {"acme-robotics", "bluebird-retail", "cedar-health"} <= set(configured_tenants())
    for tenant in [*configured_tenants(), "a-tenant-without-a-file"]:
        assert load_config(tenant).config_version.startswith("v")


def test_a_bad_configuration_names_the_file_and_the_key():
    with pytest.raises(ScoringConfigError) as bad_key:
        parse_config("version: 1\nthresholds: {grade_a: 10, grade_b: 20}\n", where="t.yaml")
    assert "t.yaml" in str(bad_key.value) and "grade_a > grade_b > grade_c" in str(bad_key.value)
    with pytest.raises(ScoringConfigError, match=r"t.yaml: engagement.half_lfe_days"):
        parse_config("version: 1\nengagement: {half_lfe_days: 3}\n", where="t.yaml")
    with pytest.raises(ScoringConfigError, match="unknown touch types"):
        parse_config("version: 1\nengagement: {daily_caps: {tweet: 3}}\n", where="t.yaml")
    with pytest.raises(ScoringConfigError, match="version"):
        parse_config("profile: {}\n", where="t.yaml")


def test_the_version_changes_with_the_content_even_without_a_bump():
    one = parse_config("version: 3\nengagement: {half_life_days: 14}\n", where="a")
    same = parse_config("version: 3\nengagement: {half_life_days: 14.0}\n", where="b")
    other = parse_config("version: 3\nengagement: {half_life_days: 7}\n", where="c")
    assert one.config_version == same.config_version
    assert one.config_version.startswith("v3-") and other.config_version != one.config_version


# -- engagement: decay and caps on fixed dates ---------------------------------


def test_decay_halves_per_half_life_and_caps_each_day():
    cfg = config(engagement={"half_life_days": 10, "daily_caps": {"pricing_visit": 3}})
    touches = pl.DataFrame(
        {
            "lead_id": ["L1", "L1", "L1", "L1", "L2"],
            "touch_type": ["pricing_visit"] * 4 + ["meeting"],
            "touch_date": [
                date(2026, 10, 31),  # as_of day: weight 1, capped 50 -> 3
                date(2026, 10, 21),  # 10 days: weight 1/2
                date(2026, 10, 11),  # 20 days: weight 1/4
                date(2026, 11, 5),  # after as_of: not counted
                date(2026, 10, 1),  # 30 days, default cap 5
            ],
            "touches": [50, 2, 4, 9, 1],
        }
    )
    as_of = pl.DataFrame(
        {"lead_id": ["L1", "L2"], "as_of_date": [date(2026, 10, 31), date(2026, 10, 31)]}
    )
    got = {
        (r["lead_id"], r["touch_type"]): r["decayed"]
        for r in decayed_touches(touches, as_of, cfg).to_dicts()
    }
    assert got[("L1", "pricing_visit")] == pytest.approx(3 + 2 * 0.5 + 3 * 0.25)
    assert got[("L2", "meeting")] == pytest.approx(0.125)


# -- the model on a planted signal ---------------------------------------------


def test_the_model_recovers_the_planted_signal_and_beats_the_rules(fitted, leads):
    _, output = fitted
    result = output.result
    assert result.kind == TENANT_MODEL
    ev = result.evaluation
    assert ev is not None and ev.holdout_rows == 480
    # held-out period: well above the rules, close to what the hidden truth allows
    assert ev.model.auc > ev.rules.auc + 0.1
    truth_auc = roc_auc_score(_holdout_labels(leads), _holdout_truth(leads))
    assert ev.model.auc > truth_auc - 0.06
    assert ev.model.calibration_error < CALIBRATION_TOLERANCE
    assert ev.model.log_loss < ev.rules.log_loss
    # the planted columns carry weight (standardised: per standard deviation)
    weights = dict(
        zip(
            output.tables["features"]["feature"].to_list(),
            output.tables["features"]["coefficient"].to_list(),
            strict=True,
        )
    )
    assert weights["custom.budget_k"] > 0.4
    assert abs(weights["custom.seats"]) < 0.15  # a numeric column with no signal
    assert weights["custom.plan_interest=enterprise"] > 0.15
    assert weights["engagement.pricing_visit"] > 0.1


def _holdout_labels(leads: LeadSet) -> np.ndarray:
    labelled = leads.leads.with_row_index("row").filter(pl.col("label").is_not_null())
    return labelled["label"].to_numpy()[-480:]


def _holdout_truth(leads: LeadSet) -> np.ndarray:
    labelled = leads.leads.with_row_index("row").filter(pl.col("label").is_not_null())
    return leads.truth[labelled["row"].to_numpy()[-480:]]


def test_reasons_add_up_to_the_score(fitted):
    _, output = fitted
    predictions = output.tables["predictions"]
    sums = output.tables["contributions"].group_by("lead_id").agg(pl.col("points").sum())
    joined = predictions.join(sums, on="lead_id", how="left").with_columns(
        pl.col("points").fill_null(0)
    )
    assert joined.height == 3000
    assert (joined["base_score"] + joined["points"] == joined["score"]).all()
    assert ((joined["score"] - (joined["probability"] * 100).round(0)).abs() == 0).all()
    # every reason names its evidence, except the absence of any touch of a type
    contributions = output.tables["contributions"]
    absent = (pl.col("kind") == "engagement") & (pl.col("value") == 0)
    assert contributions.filter(~absent)["evidence_ref"].null_count() == 0
    assert (
        contributions.filter(absent)["evidence_ref"].null_count()
        == contributions.filter(absent).height
    )


def test_a_lead_with_no_data_is_unknown_not_a_guess(leads):
    frame = leads.leads.with_columns(
        pl.when(pl.col("lead_id") == "L000005").then(None).otherwise(pl.col(c)).alias(c)
        for c in ("title_seniority", "industry", "company_size", "country", "source")
    )
    touches = leads.touches.filter(pl.col("lead_id") != "L000005")
    output = fit_and_score("t-synth", frame, touches, config())
    row = output.tables["predictions"].filter(pl.col("lead_id") == "L000005").to_dicts()[0]
    assert row["score_status"] == "unknown"
    assert row["score"] is None and row["probability"] is None
    assert output.tables["contributions"].filter(pl.col("lead_id") == "L000005").height == 0


def test_status_never_leaks_into_open_leads_probabilities(leads):
    cfg = config()
    rng = np.random.default_rng(1)
    open_rows = leads.leads["label"].is_null().to_numpy()
    statuses = leads.leads["status"].to_numpy().copy()
    statuses[open_rows] = rng.permutation(statuses[open_rows])
    statuses[open_rows][:10] = "qualified"
    shuffled = leads.leads.with_columns(status=pl.Series(statuses))
    assert (shuffled["status"] != leads.leads["status"]).sum() > 100

    def open_probabilities(frame: pl.DataFrame) -> list[float]:
        output = fit_and_score("t-synth", frame, leads.touches, cfg)
        open_ids = frame.filter(pl.col("label").is_null())["lead_id"]
        return (
            output.tables["predictions"]
            .filter(pl.col("lead_id").is_in(open_ids))
            .sort("lead_id")["probability"]
            .to_list()
        )

    assert open_probabilities(shuffled) == open_probabilities(leads.leads)


def test_a_custom_attribute_is_a_feature_and_excluding_it_removes_it(leads, fitted):
    _, output = fitted
    features = set(output.tables["features"]["feature"].to_list())
    assert "custom.budget_k" in features and "custom.plan_interest=enterprise" in features
    # ids and free text are left out, and the model card says why
    decisions = {
        r["attribute"]: (r["decision"], r["reason"])
        for r in output.tables["custom_attributes"].to_dicts()
    }
    assert decisions["crm_ref"][0] == "excluded" and "distinct values" in decisions["crm_ref"][1]
    assert decisions["note"][0] == "excluded"
    assert decisions["budget_k"][0] == "numeric"

    cfg = config(custom_attributes={"exclude": ["budget_k"]})
    without = fit_and_score("t-synth", leads.leads, leads.touches, cfg)
    names = set(without.tables["features"]["feature"].to_list())
    assert "custom.budget_k" not in names and "custom.plan_interest=enterprise" in names
    assert without.config_version != config().config_version
    assert without.model_version != output.model_version
    assert without.result.evaluation.model.auc < output.result.evaluation.model.auc


def test_few_labels_use_the_pooled_model_when_opted_in_else_the_rules(leads):
    small = lead_set("t-small", leads=40, seed=3)
    opted = config(model={"pooled_opt_in": True})
    others = {"t-synth": (leads.leads, leads.touches, opted)}

    pooled = fit_and_score("t-small", small.leads, small.touches, opted, pooled=others)
    assert pooled.result.kind == POOLED_MODEL
    assert pooled.tables["predictions"].height == 40
    assert "fewer than min_labels" in pooled.result.reason
    # no custom attributes in a pooled model: other tenants' columns mean nothing here
    assert not any(f.startswith("custom.") for f in pooled.tables["features"]["feature"])

    alone = fit_and_score("t-small", small.leads, small.touches, config(), pooled=others)
    assert alone.result.kind == RULES
    assert "predictions" not in alone.tables
    assert alone.tables["models"]["model_kind"].to_list() == [RULES]


def test_the_rules_baseline_does_not_read_the_status(leads):
    """The baseline the model must beat is the v0 score minus its status points: with
    them it would read the label (converted leads get the status points)."""
    frame = build_features(leads.leads, leads.touches, config())
    assert "status" not in frame.matrix.columns
    assert not any("status" in name for name in frame.names)
    result = train_tenant_model(frame, config())
    scored = score_leads(frame, result.model, config())
    assert scored.predictions.height == 3000


def test_the_lead_model_tables_match_the_dbt_sources():
    doc = yaml.safe_load(SOURCES_YML.read_text())
    [source] = doc["sources"]
    declared = {
        t["name"]: tuple((c["name"], c["data_type"]) for c in t["columns"])
        for t in source["tables"]
    }
    assert declared == TABLES


def test_the_synthetic_set_is_what_the_model_reads(leads):
    assert leads.leads.height == 3000
    assert leads.leads["created_at"].is_sorted()
    assert (
        leads.leads.filter(pl.col("label").is_null())["status"]
        .is_in(["new", "contacted", "qualified"])
        .all()
    )
    assert leads.leads["features_as_of"].max() == datetime(2026, 11, 1, tzinfo=UTC)


def test_boosting_is_kept_where_it_wins_and_its_reasons_still_add_up():
    """A budget that helps only within a band: no straight line through the logit
    follows it, boosted stumps do. Boosting is kept, its scores split exactly into
    per-feature points, and the card's weight summarises each feature's curve."""
    band = lead_set("t-band", leads=3000, seed=11, budget_signal="sweet_spot")
    output = fit_and_score("t-band", band.leads, band.touches, config())
    result = output.result
    assert result.kind == BOOSTED_MODEL, result.reason
    assert "logistic" in result.reason and "boosting AUC" in result.reason
    ev = result.evaluation
    assert ev is not None and ev.model.auc > ev.rules.auc + 0.1
    assert ev.model.calibration_error < CALIBRATION_TOLERANCE
    assert output.model_version.startswith("tenant_boosted-")

    scored = output.tables["predictions"].filter(pl.col("score_status") == "scored")
    points = output.tables["contributions"].group_by("lead_id").agg(pl.col("points").sum())
    joined = scored.join(points, on="lead_id", how="left").with_columns(
        pl.col("points").fill_null(0)
    )
    assert (joined["score"] - joined["base_score"] == joined["points"]).all()

    # Without the option, or on a linear signal (test above), the regression scores.
    linear = fit_and_score(
        "t-band", band.leads, band.touches, config(model={"try_boosting": False})
    )
    assert linear.result.kind == TENANT_MODEL
    assert linear.result.evaluation.model.auc < ev.model.auc


def test_boosted_stumps_reproduce_what_scikit_learn_fitted():
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = ((np.abs(x[:, 0]) < 0.7) ^ (rng.random(400) < 0.15)).astype(int)
    model = fit_boosted("tenant_boosted", [], x, y, min_leaf=10)
    reference = GradientBoostingClassifier(
        max_depth=1,
        n_estimators=BOOSTING_ROUNDS,
        learning_rate=BOOSTING_RATE,
        min_samples_leaf=10,
        random_state=0,
    ).fit(x, y)
    assert np.allclose(model.logits(x), reference.decision_function(x), atol=1e-9)
    # centred: the average training lead's contributions sum to zero, feature by feature
    assert np.allclose(model.contributions(x).mean(axis=0), 0.0, atol=1e-9)
