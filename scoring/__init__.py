"""Lead scoring: per-tenant configuration, feature frames, the model and its reasons.

Plain functions on polars frames; the Dagster asset (assets/lead_model.py) and the
CLI (cli/scores.py) are thin wiring around them.
"""
