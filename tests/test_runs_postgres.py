"""The whole job on Postgres, as users run it: two `bizos run` processes
started together on one warehouse, real dbt on the postgres target, published
to the serving schema. Two dbt builds at once would create the same relations
("relation already exists"); the warehouse's advisory lock makes them take turns.

That DuckDB and Postgres give the same rows is held at the model level
(test_dbt_project, test_lead_marts), where it is cheaper to run.
"""

from __future__ import annotations

import pytest

from tests.runs import assert_each_tenant_scored_and_served, run_together

TENANTS = ("t-north", "t-south")  # two runs overlap as well as three, for 2/3 the time

pytestmark = [pytest.mark.timeout(1500), pytest.mark.postgres]


def test_tenant_runs_started_together_all_succeed(pg_settings):
    run_together(pg_settings, TENANTS)
    assert_each_tenant_scored_and_served(pg_settings, TENANTS)
