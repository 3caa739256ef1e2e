"""The supplier assets as Dagster runs them: one materialization of the inputs and
the screening for a tenant, landing the lake tables dbt reads; a broken policy
fails the tenant's run with the file and key named."""

from __future__ import annotations

import os
import time

import pytest
from dagster import DagsterInstance, materialize

from assets.partitions import tenants
from assets.resources import BizosSettings
from assets.suppliers import screening_matches, supplier_inputs
from core.contracts.suppliers import INPUT_TABLES
from core.settings import Settings
from suppliers.landing import lake_path, read_table
from suppliers.policy import SupplierPolicyError, load_policy, parse_policy


def drop(settings: Settings, tenant: str, files: dict[str, str]) -> None:
    inbox = settings.tenant_inbox(tenant)
    for name, text in files.items():
        path = inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        old = time.time() - 60
        os.utime(path, (old, old))


def test_one_materialization_lands_every_supplier_table(settings: Settings) -> None:
    drop(
        settings,
        "t1",
        {
            "suppliers.csv": "supplier_id,legal_name,aliases,country\n"
            "S1,Acme Trading Co. Ltd,ACME TRD,CN\nS2,Harbour Components Ltd,,GB\n",
            "screening/un_list.csv": "id,name,aliases,countries\n"
            "u1,ACME TRADING LIMITED,,CN\nu2,Someone Else,,FR\n",
        },
    )
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(tenants.name or "tenants", ["t1"])
    result = materialize(
        [supplier_inputs, screening_matches],
        partition_key="t1",
        instance=instance,
        resources={"bizos": BizosSettings(home=str(settings.home), database_url="")},
    )
    assert result.success
    for table in INPUT_TABLES:
        assert lake_path(settings, table, "t1").exists(), table
    matches = read_table(settings, "screening_matches", "t1").to_pylist()
    assert [(m["supplier_id"], m["list_name"], m["entry_id"]) for m in matches] == [
        ("S1", "un_list", "u1")
    ]
    # no purchase_orders.csv: an empty, typed partition, not a failure
    assert read_table(settings, "purchase_orders", "t1").num_rows == 0
    policy = read_table(settings, "policy", "t1").to_pylist()[0]
    assert policy["config_version"] == load_policy("t1").config_version


def test_a_broken_policy_names_the_file_and_key() -> None:
    with pytest.raises(SupplierPolicyError, match=r"test\.yaml: tiers: .*medium < high"):
        parse_policy("version: 1\ntiers: {medium: 60, high: 50}\n", where="test.yaml")
    with pytest.raises(
        SupplierPolicyError, match=r"required_documents\.0: .*doc_type .passport. not in"
    ):
        parse_policy("version: 1\nrequired_documents: [{doc_type: passport}]\n", where="test.yaml")
