"""The lead marts built for real: dbt, then the lead model, then dbt again, on DuckDB
and on Postgres from the same lake, giving the same scores, reasons and funnel.

Two tenants of generated CRM leads (with custom columns) go into the lake; one has
enough labels for a model of its own, the other has too few and no pooled opt-in,
so it keeps the rules. One build per target is shared by the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg
import pytest

from core.contracts.score_shape import parse_reasons_json
from core.settings import Settings, get_settings
from sandbox.crm_export import iter_export_leads
from scoring.config import ScoringConfig
from scoring.lead_model import fit_and_score
from scoring.store import read_inputs, write_outputs
from tests.test_dbt_project import dbt_build, lead, load_raw, write_lake

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
TENANTS = {"big-co": 600, "small-co": 30}
CONFIGS = {
    "big-co": ScoringConfig.model_validate(
        {"version": 2, "profile": {"industries": ["software"]}, "thresholds": {"mql": 30}}
    ),
    "small-co": ScoringConfig(version=1),
}
SCORE_COLUMNS = (
    "tenant_id, lead_id, score, grade, reasons, score_model, score_status, probability,"
    " fit_score, engagement_score, is_mql, reasons_json, model_version, config_version"
)


def lake_rows() -> list[dict]:
    rows = []
    for tenant_id, n in TENANTS.items():
        for line, x in enumerate(iter_export_leads(tenant_id, leads=n, seed=5, as_of=AS_OF), 2):
            row = lead(
                tenant_id=tenant_id,
                lead_id=x.lead_id,
                email=x.email,
                created_at=x.created,
                status=x.status,
                line=line,
                first_name=x.first_name,
                last_name=x.last_name,
                company=x.company,
                title=x.title or None,
                industry=x.industry,
                company_size=x.company_size,
                country=x.country,
                source=x.source,
            )
            # custom columns: a number carrying the propensity, a category, an id
            row["custom_attributes"] = json.dumps(
                {
                    "employees": str(int(50 + 900 * x.propensity) + line % 7),
                    "owner": x.owner,
                    "crm_ref": f"R{line:05d}",
                }
            )
            rows.append(row)
    return rows


def run_models(settings: Settings) -> None:
    for tenant_id in TENANTS:
        leads, touches = read_inputs(settings, [tenant_id])
        output = fit_and_score(
            tenant_id,
            leads,
            touches,
            CONFIGS[tenant_id],
            trained_at=datetime(2026, 11, 2, tzinfo=UTC),
            run_id="test",
        )
        write_outputs(settings, tenant_id, output.tables)


def query(settings: Settings, sql: str) -> list[tuple]:
    if settings.database_url:
        with psycopg.connect(settings.postgres_url) as conn:
            return conn.execute(sql).fetchall()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def marts(settings: Settings) -> dict[str, list[tuple]]:
    return {
        "scores": sorted(
            query(settings, f"select {SCORE_COLUMNS} from analytics.mart_lead_scores"),
            key=lambda r: (r[0], r[1]),
        ),
        "funnel": sorted(query(settings, "select * from analytics.mart_lead_funnel")),
        "cards": sorted(query(settings, "select * from analytics.mart_lead_model_cards")),
        "history": sorted(
            query(
                settings,
                "select tenant_id, lead_id, score, scored_at"
                " from analytics.mart_lead_score_history",
            )
        ),
    }


@pytest.fixture(scope="module")
def duckdb_built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("leads")
    settings = get_settings(home=home, database_url=None)
    write_lake(settings, lake_rows())
    dbt_build(settings, home / "dbt-1")  # no model yet: the rules score everyone
    run_models(settings)
    dbt_build(settings, home / "dbt-2")
    yield settings


@pytest.fixture(scope="module")
def duckdb_marts(duckdb_built: Settings) -> dict[str, list[tuple]]:
    return marts(duckdb_built)


def by_lead(rows: list[tuple]) -> dict[tuple[str, str], dict]:
    names = [c.strip() for c in SCORE_COLUMNS.split(",")]
    return {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in rows}


def test_a_tenant_with_labels_gets_its_model_the_other_keeps_the_rules(duckdb_marts):
    rows = by_lead(duckdb_marts["scores"])
    big = [r for (t, _), r in rows.items() if t == "big-co"]
    small = [r for (t, _), r in rows.items() if t == "small-co"]
    assert len(big) == 600 and len(small) == 30
    assert {r["score_model"] for r in big} == {"tenant_logreg"}
    assert {r["score_model"] for r in small} == {"rules_v0"}
    assert all(r["probability"] is None for r in small)
    scored = [r for r in big if r["score_status"] == "scored"]
    assert len(scored) == 600
    for r in scored:
        assert r["score"] == round(100 * r["probability"])
        assert r["grade"] in {"A", "B", "C", "D"} and r["is_mql"] == (r["score"] >= 30)
        assert r["config_version"] == CONFIGS["big-co"].config_version
        reasons = parse_reasons_json(r["reasons_json"])
        positives = [x.points for x in reasons if x.points > 0]
        negatives = [x.points for x in reasons if x.points < 0]
        assert positives == sorted(positives, reverse=True) and len(positives) <= 3
        assert negatives == sorted(negatives) and len(negatives) <= 3
        assert r["reasons"] == "|".join(f"{x.code}:{x.points:+d}" for x in reasons)
        assert all(x.evidence for x in reasons if not x.code.startswith("engagement."))


def test_the_custom_number_is_a_feature_and_the_id_is_not(duckdb_built):
    features = {
        r[0]
        for r in query(
            duckdb_built, "select feature from lead_model.features where tenant_id = 'big-co'"
        )
    }
    assert "custom.employees" in features
    assert not any(f.startswith("custom.crm_ref") for f in features)
    assert "icp.industry" in features


def test_the_model_card_reaches_the_api_with_its_custom_attribute(duckdb_built, duckdb_marts):
    """The mart's card, published as the serving asset does, is what each tenant's key
    reads: its own model, the custom number among the features, the metrics of the
    model and of the rules on the same held-out period."""
    from fastapi.testclient import TestClient

    from core.contracts.lead_model_cards import LEAD_MODEL_CARDS
    from serving.keys import create_key
    from serving.main import create_app
    from serving.publish import publish_table
    from warehouse.marts import read_mart

    assert [r[0] for r in duckdb_marts["cards"]] == ["big-co", "small-co"]
    for tenant_id in TENANTS:
        publish_table(
            duckdb_built,
            LEAD_MODEL_CARDS,
            tenant_id,
            read_mart(duckdb_built, LEAD_MODEL_CARDS, tenant_id=tenant_id),
        )
    with TestClient(create_app(duckdb_built)) as client:
        big = client.get(
            "/v1/leads/model", headers={"X-API-Key": create_key(duckdb_built, "big-co")}
        ).json()
        small = client.get(
            "/v1/leads/model", headers={"X-API-Key": create_key(duckdb_built, "small-co")}
        ).json()
    assert big["tenant_id"] == "big-co" and big["score_model"] == "tenant_logreg"
    assert big["config_version"] == CONFIGS["big-co"].config_version
    features = {f["feature"]: f for f in big["features"]}
    assert features["custom.employees"]["source_column"].endswith("employees")
    assert features["custom.employees"]["scale"] > 0
    assert not any(f.startswith("custom.crm_ref") for f in features)
    decisions = {a["attribute"]: a["decision"] for a in big["custom_attributes"]}
    assert decisions["employees"] == "numeric" and decisions["crm_ref"] == "excluded"
    assert 0 < big["metrics"]["model"]["auc"] <= 1 and 0 < big["metrics"]["rules"]["auc"] <= 1
    assert big["holdout_rows"] > 0 and big["trained_at"]
    assert len(big["calibration"]["model"]) >= 1 and len(big["calibration"]["rules"]) >= 1
    assert big["labels"]["used"] == big["labels"]["positive"] + big["labels"]["negative"]
    assert small["tenant_id"] == "small-co" and small["score_model"] == "rules_v0"
    assert small["features"] == [] and small["reason"]


def test_reasons_add_up_to_the_score(duckdb_built):
    rows = query(
        duckdb_built,
        "select p.lead_id, p.score, p.base_score, coalesce(sum(c.points), 0)"
        " from lead_model.predictions p left join lead_model.contributions c"
        " on p.tenant_id = c.tenant_id and p.lead_id = c.lead_id"
        " where p.tenant_id = 'big-co' group by p.lead_id, p.score, p.base_score",
    )
    assert len(rows) == 600
    assert all(score == base + points for _, score, base, points in rows)


def test_the_funnel_counts_every_lead_once(duckdb_marts):
    funnel = duckdb_marts["funnel"]
    assert sum(r[2] for r in funnel if r[0] == "big-co") == 600
    assert sum(r[2] for r in funnel if r[0] == "small-co") == 30
    # converted + lost + open = leads, every week
    assert all(r[4] + r[5] + r[6] == r[2] for r in funnel)


def test_history_has_a_row_per_lead_per_scoring(duckdb_marts):
    history = duckdb_marts["history"]
    # the rules build then the model build: two scorings per big-co lead
    big = [r for r in history if r[0] == "big-co"]
    assert len(big) == 1200 and len({r[3] for r in big}) == 2


@pytest.mark.postgres
def test_postgres_gives_the_same_scores_reasons_and_funnel(
    duckdb_built: Settings, duckdb_marts, pg_url: str, tmp_path: Path
):
    load_raw(pg_url, duckdb_built, list(TENANTS))
    settings = get_settings(home=duckdb_built.home, database_url=pg_url)
    dbt_build(settings, tmp_path / "pg-1")
    run_models(settings)
    dbt_build(settings, tmp_path / "pg-2")
    on_postgres = marts(settings)
    assert on_postgres["scores"] == duckdb_marts["scores"]
    assert on_postgres["funnel"] == duckdb_marts["funnel"]
    # The model card's JSON holds numbers: the same bytes on both engines.
    assert [r[:1] + r[2:] for r in on_postgres["cards"]] == [
        r[:1] + r[2:] for r in duckdb_marts["cards"]
    ]
    assert len(on_postgres["history"]) == len(duckdb_marts["history"])
