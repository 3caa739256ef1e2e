"""The whole job on Postgres with the lake on object storage, as users run it past
one machine: two `bizos run` processes started together on one warehouse, the lake
at BIZOS_LAKE_URL=s3://bucket/prefix (moto's server, tests/s3.py), real dbt on the
postgres target (the raw tables loaded into Postgres from S3), published to the
serving schema. Two dbt builds at once would create the same relations ("relation
already exists"); the warehouse's advisory lock makes them take turns.

The local-folder lake runs whole in test_runs_embedded; that DuckDB and Postgres
give the same rows is held at the model level (test_dbt_project, test_lead_marts),
where it is cheaper to run.
"""

from __future__ import annotations

import pytest

from lake.files import find, lake_root
from tests.runs import assert_each_tenant_scored_and_served, run_together
from tests.s3 import SECRET_KEY

TENANTS = ("t-north", "t-south")  # two runs overlap as well as three, for 2/3 the time

pytestmark = [pytest.mark.timeout(1500), pytest.mark.postgres]


def test_tenant_runs_started_together_on_an_s3_lake_all_succeed(bizos_home, pg_url, s3_server):
    settings = s3_server.settings(bizos_home, database_url=pg_url)
    outputs = run_together(settings, TENANTS)
    assert_each_tenant_scored_and_served(settings, TENANTS)
    assert not (settings.home / "lake").exists()  # nothing landed on local disk
    for tenant in TENANTS:
        assert find(lake_root(settings), f"crm_export/leads/tenant={tenant}/*.parquet")
        assert SECRET_KEY not in outputs[tenant]
