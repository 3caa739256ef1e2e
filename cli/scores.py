"""`bizos scores`: how good each tenant's lead model is, against the rules.

``evaluate`` prints, per tenant, the held-out AUC, log loss and calibration of
the model that scores it and of the rules baseline, from the tables the last
lead model run wrote (lead_model.models, lead_model.calibration). With
``--synthetic`` it fits a model on the planted-signal lead set
(sandbox/lead_outcomes.py), whose ground truth is known, instead.
"""

from __future__ import annotations

from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from core.settings import Settings, get_settings
from core.tenancy import check_tenant_id

scores_app = typer.Typer(help="Lead scores: the models against the rules.", no_args_is_help=True)
console = Console(width=140)


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def models_table(models: pl.DataFrame) -> Table:
    """One row per tenant: which model, labels, and held-out model vs rules."""
    table = Table(
        title="lead models (held-out period: newest labelled leads)", title_justify="left"
    )
    for col in (
        "tenant",
        "model",
        "labels +/-/open",
        "held out",
        "AUC",
        "rules AUC",
        "log loss",
        "rules log loss",
        "calib. error",
        "rules calib.",
        "why",
    ):
        table.add_column(col, justify="left" if col in {"tenant", "model", "why"} else "right")
    for row in models.sort("tenant_id").iter_rows(named=True):
        table.add_row(
            row["tenant_id"],
            row["model_kind"],
            f"{row['labels_positive']}/{row['labels_negative']}/{row['labels_open']}",
            _fmt(row["holdout_rows"]),
            _fmt(row["auc"]),
            _fmt(row["rules_auc"]),
            _fmt(row["log_loss"]),
            _fmt(row["rules_log_loss"]),
            _fmt(row["calibration_error"]),
            _fmt(row["rules_calibration_error"]),
            row["reason"],
        )
    return table


def calibration_table(tenant_id: str, calibration: pl.DataFrame) -> Table:
    table = Table(title=f"{tenant_id}: calibration by decile (held out)", title_justify="left")
    for col in ("decile", "leads", "model predicted", "observed", "rules predicted", "observed "):
        table.add_column(col, justify="right")
    by = {(r["scorer"], r["decile"]): r for r in calibration.iter_rows(named=True)}
    for decile in sorted({d for _, d in by}):
        m, r = by.get(("model", decile)), by.get(("rules", decile))
        table.add_row(
            str(decile),
            _fmt(m["leads"] if m else None),
            _fmt(m["mean_predicted"] if m else None, 2),
            _fmt(m["observed_rate"] if m else None, 2),
            _fmt(r["mean_predicted"] if r else None, 2),
            _fmt(r["observed_rate"] if r else None, 2),
        )
    return table


def print_evaluation(settings: Settings, tenant_id: str | None, *, calibration: bool) -> bool:
    """The tenants' model rows (and calibration); False when no model has run yet."""
    from scoring.store import SCHEMA, read_tenant_rows

    tenants = [check_tenant_id(tenant_id)] if tenant_id else None
    models = read_tenant_rows(settings, SCHEMA, "models", tenants)
    if models.is_empty():
        return False
    console.print(models_table(models))
    if calibration:
        cal = read_tenant_rows(settings, SCHEMA, "calibration", tenants)
        for tenant in sorted(models["tenant_id"].to_list()):
            rows = cal.filter(pl.col("tenant_id") == tenant) if not cal.is_empty() else cal
            if not rows.is_empty():
                console.print(calibration_table(tenant, rows))
    return True


def evaluate_synthetic(leads: int, seed: int) -> None:
    """Fit on the planted-signal set and print model vs rules vs the hidden truth."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from sandbox.lead_outcomes import lead_set
    from scoring.config import ScoringConfig
    from scoring.lead_model import fit_and_score
    from scoring.model import time_split

    data = lead_set("synthetic", leads=leads, seed=seed)
    config = ScoringConfig(version=1)
    output = fit_and_score("synthetic", data.leads, data.touches, config)
    models = output.tables["models"]
    console.print(models_table(models))
    _, holdout = time_split(output.frame, config.model.holdout_fraction)
    y = output.frame.leads["label"].to_numpy()[holdout]
    truth = roc_auc_score(y, data.truth[holdout]) if len(np.unique(y)) == 2 else float("nan")
    console.print(f"hidden truth's AUC on the same held-out leads: {truth:.3f} (the ceiling)")


@scores_app.command("evaluate")
def evaluate(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="one tenant id")] = None,
    calibration: Annotated[
        bool, typer.Option("--calibration/--no-calibration", help="deciles too")
    ] = True,
    synthetic: Annotated[
        bool, typer.Option(help="fit on the planted-signal lead set instead of the warehouse")
    ] = False,
    leads: Annotated[int, typer.Option(help="--synthetic: how many leads", min=50)] = 5000,
    seed: Annotated[int, typer.Option(help="--synthetic: seed")] = 7,
) -> None:
    """AUC, log loss and calibration of each tenant's model and of the rules, held out."""
    if synthetic:
        evaluate_synthetic(leads, seed)
        return
    if not print_evaluation(get_settings(), tenant, calibration=calibration):
        console.print("no lead model has run yet: `bizos run` (or `bizos demo`) first")
        raise typer.Exit(1)
