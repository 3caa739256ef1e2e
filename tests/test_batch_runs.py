"""Batch refresh (`bizos run --batch-size N`, pipelines/batch.py): how tenants are
split into batches and which tenant ids a batch refuses.

A whole batch run is compared with per-tenant runs in tests/test_runs_embedded.py
(`test_a_batch_run_on_an_s3_lake_publishes_the_same_scores`, sharing that module's
runs), and batch builds at the dbt level in tests/test_dbt_project.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from pipelines.batch import split_batches


def test_batches_split_in_order_and_cover_every_tenant():
    ids = [f"t{i}" for i in range(7)]
    assert split_batches(ids, 3) == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]
    assert split_batches(ids, 0) == [ids]
    assert split_batches([], 3) == []


def test_a_tenant_id_that_could_break_the_tenant_list_is_refused(tmp_path: Path):
    from pipelines.batch import dbt_build

    settings = Settings(home=tmp_path, database_url=None)
    with pytest.raises(ValueError, match="invalid tenant id"):
        dbt_build(settings, ["ok", "a,b"], "dbt_marts", batch_id="x", log=print)
