"""One tenant's lead model at scale: 50,000 leads and 20 custom columns, featurised,
trained and scored (the issue's budget: under 60 s on the development machine).

Builds the planted-signal lead set (sandbox/lead_outcomes.py: 5 custom columns of
its own plus ``--extra`` noise columns, so 20 by default) in the shapes of the
dbt models the lead model reads, then times each stage of
``scoring.lead_model.fit_and_score`` separately and end to end. Generating the
set is not timed (the warehouse holds it in a real run). Prints the stage times,
the held-out AUC of model and rules, and peak RSS.

    .venv/bin/python bench/lead_model.py [--leads 50000] [--extra 15]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.lead_outcomes import lead_set  # noqa: E402
from scoring.config import ScoringConfig  # noqa: E402
from scoring.features import build_features  # noqa: E402
from scoring.lead_model import fit_and_score  # noqa: E402
from scoring.model import score_leads, train_tenant_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--extra", type=int, default=15, help="noise custom columns beyond 5")
    args = parser.parse_args()

    started = time.perf_counter()
    data = lead_set("bench", leads=args.leads, extra_columns=args.extra, seed=11)
    generated = time.perf_counter() - started
    custom = len(json.loads(data.leads["custom_attributes"][0])) if data.leads.height else 0
    print(
        f"lead set: {data.leads.height:,} leads, {custom} custom columns, "
        f"{data.touches.height:,} touch-days (generated in {generated:.1f} s, not timed)"
    )
    config = ScoringConfig(version=1)

    t0 = time.perf_counter()
    frame = build_features(data.leads, data.touches, config)
    t1 = time.perf_counter()
    result = train_tenant_model(frame, config)
    t2 = time.perf_counter()
    assert result.model is not None, result.reason
    scored = score_leads(frame, result.model, config)
    t3 = time.perf_counter()
    print(f"featurise: {t1 - t0:6.1f} s  ({frame.matrix.width} features)")
    print(f"train:     {t2 - t1:6.1f} s  (held-out fit + final fit on every label)")
    print(f"score:     {t3 - t2:6.1f} s  ({scored.contributions.height:,} reason rows)")

    t4 = time.perf_counter()
    output = fit_and_score("bench", data.leads, data.touches, config)
    total = time.perf_counter() - t4
    ev = output.result.evaluation
    assert ev is not None
    print(f"end to end (fit_and_score, tables built): {total:.1f} s")
    print(
        f"held out: {ev.holdout_rows:,} leads; AUC model {ev.model.auc:.3f} vs rules "
        f"{ev.rules.auc:.3f}; log loss {ev.model.log_loss:.3f} vs {ev.rules.log_loss:.3f}; "
        f"calibration error {ev.model.calibration_error:.3f}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
