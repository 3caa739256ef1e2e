"""The one settings object of the platform.

Everything that differs between a laptop and production is decided here, once:
the embedded defaults (DuckDB, a local Parquet lake) when ``BIZOS_DATABASE_URL``
is unset, Postgres when it is set. Other modules ask the settings; they never
read the environment themselves.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Target(StrEnum):
    """Where dbt builds and where serving reads."""

    DUCKDB = "duckdb"
    POSTGRES = "postgres"


class RunLauncher(StrEnum):
    """How Dagster starts a run that its daemon or UI launches (``bizos run`` always
    runs in its own process)."""

    PROCESS = "process"
    K8S = "k8s"


class StepExecutor(StrEnum):
    """Where a launched run's steps execute: processes beside the run, or a
    Kubernetes Job per step."""

    MULTIPROCESS = "multiprocess"
    K8S = "k8s"


class PostgresParts:
    """A Postgres URL split into the pieces dbt's profile wants as env vars."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
            raise ValueError(
                f"BIZOS_DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}"
            )
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = unquote(parts.username or "postgres")
        self.password = unquote(parts.password or "")
        self.dbname = (parts.path or "/postgres").lstrip("/") or "postgres"


class Settings(BaseSettings):
    """Read from the environment (prefix ``BIZOS_``) and a ``.env`` file."""

    model_config = SettingsConfigDict(
        env_prefix="BIZOS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(default=PROJECT_ROOT / ".bizos", description="lake, DuckDB files, state")
    lake_url: str | None = Field(
        default=None,
        description="where the Parquet lake lives: a folder, or s3://bucket/prefix on object "
        "storage (reached with the AWS_* settings); default BIZOS_HOME/lake",
    )
    # The standard AWS names (no BIZOS_ prefix), read only for an s3:// lake.
    aws_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_ENDPOINT_URL", "aws_endpoint_url"),
        description="S3 endpoint for an s3:// lake, e.g. http://minio:9000; AWS when unset",
    )
    aws_access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "aws_access_key_id")
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    )
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "aws_region")
    )
    database_url: SecretStr | None = Field(
        default=None, description="Postgres URL; when set, dbt and serving use Postgres"
    )
    api_database_url: SecretStr | None = Field(
        default=None,
        description="Postgres URL of the API's own login role (`bizos keys api-role` makes it); "
        "the API never reads as the publisher",
    )
    api_replica_url: SecretStr | None = Field(
        default=None,
        description="a streaming replica of the API's database, as the same role: published "
        "rows are read there; keys, reviews and the change feed stay on the primary",
    )
    # The dbt project on Spark (warehouse/spark_target.py, docs/operations.md): its own
    # venv, and a local session sized for one machine.
    spark_venv: Path = Field(
        default=PROJECT_ROOT / ".spark-venv", description="dbt-spark and pyspark's virtualenv"
    )
    spark_master: str = Field(default="local[*]", description="Spark master of the dbt session")
    spark_shuffle_partitions: int = Field(
        default=4, ge=1, description="spark.sql.shuffle.partitions (Spark's 200 suits a cluster)"
    )
    spark_driver_memory: str = Field(default="1g", description="spark.driver.memory")
    redis_url: str | None = Field(
        default=None, description="Redis URL for the API's rate limits; in-process without it"
    )
    api_rate_limit: int = Field(
        default=100, ge=1, description="requests per second one API key may make (burst: twice)"
    )
    api_snapshot_max_rows: int = Field(
        default=1_000_000,
        ge=0,
        description="rows of published tables each API process keeps in memory",
    )
    api_snapshots: bool = Field(
        default=True,
        description="on Postgres, serve keys and rows from per-process memory kept current"
        " by LISTEN/NOTIFY (serving/change_feed.py); false reads every request through SQL",
    )
    api_db_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="the API's bound on connecting, a statement and a lock wait; past it, 503",
    )
    master_key: SecretStr | None = Field(
        default=None, description="key(s) for tenant secrets: one, or 'new,old' during a roll"
    )
    new_master_key: SecretStr | None = Field(
        default=None, description="the key `bizos credentials rotate-master` moves to"
    )

    # Many runs at once (docs/operations.md, "Many tenants at once").
    max_concurrent_runs: int = Field(
        default=4,
        ge=1,
        description="runs the Dagster run queue starts at once (dagster.yaml); the daily "
        "schedule's tenant runs queue beyond it instead of stampeding; also the tenants a "
        "batch run (bizos run --batch-size) ingests at once",
    )
    duckdb_memory_limit: str | None = Field(
        default=None,
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="memory the embedded warehouse's DuckDB may use in a dbt build "
        "(e.g. 4GB); unset: DuckDB's own default, 80% of the machine's memory. "
        "Set it lower where dbt shares the machine with the API, Superset and runs",
    )
    refresh_batch_size: int = Field(
        default=0,
        ge=0,
        description="tenants per batch of the daily refresh (0: one materialize_all run per "
        "tenant, daily_refresh; N: one run refreshing N tenants per dbt build, "
        "daily_batch_refresh); many tenants refresh much faster in batches",
    )
    dbt_runs_kept: int = Field(
        default=20,
        ge=1,
        description="per-run dbt target/log folders kept under BIZOS_HOME/dbt/runs",
    )
    lock_progress_seconds: float = Field(
        default=15.0,
        gt=0,
        description="how often a run waiting for the warehouse writer lock logs who holds it",
    )

    # Operations (docs/operations.md): per-source concurrency across tenants, alerts.
    source_concurrency: dict[str, int] = Field(
        default_factory=dict,
        description="steps of one source that may run at once across all tenants (Dagster "
        'pool source_<name>), e.g. {"stripe": 2}; a source not named gets '
        "source_concurrency_default",
    )
    source_concurrency_default: int = Field(
        default=4, ge=1, description="pool limit of a source not in source_concurrency"
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None,
        description="where run-failure and check-failure alerts are POSTed as JSON; "
        "no alerts without it (the URL may hold a token, so it is never logged)",
    )
    alert_timeout_s: float = Field(default=5.0, gt=0, description="bound on one alert POST")
    alert_attempts: int = Field(
        default=3, ge=1, description="tries per alert (backoff between them) before giving up"
    )
    dagster_url: str = Field(
        default="http://127.0.0.1:3000",
        description="the Dagster UI's base URL, for the run links in alerts",
    )

    # Dagster past one machine (docs/scaling.md): each launched run a Kubernetes
    # Job, optionally each step too. Needs the Postgres target: a run in another
    # pod must share Dagster's storage, the warehouse and the serving store.
    run_launcher: RunLauncher = Field(
        default=RunLauncher.PROCESS,
        description="process (the default run launcher) or k8s (dagster-k8s K8sRunLauncher)",
    )
    step_executor: StepExecutor = Field(
        default=StepExecutor.MULTIPROCESS,
        description="multiprocess (steps beside their run) or k8s (a Kubernetes Job per step)",
    )
    k8s_namespace: str = Field(default="bizos", description="namespace of launched run Jobs")
    k8s_job_image: str | None = Field(
        default=None,
        description="image of run Jobs; unset, the image the code location server reports",
    )
    k8s_env_secrets: list[str] = Field(
        default_factory=lambda: ["bizos-env"],
        description="Kubernetes Secrets whose keys become the run pods' environment "
        "(BIZOS_DATABASE_URL, BIZOS_MASTER_KEY, AWS_*): values never enter dagster.yaml",
    )
    k8s_instance_config_map: str = Field(
        default="dagster-instance",
        description="ConfigMap holding dagster.yaml for run pods (the Dagster Helm chart's "
        "<release>-instance)",
    )
    k8s_service_account: str = Field(
        default="default",
        description="service account of run pods (the Helm chart's, to launch step Jobs)",
    )
    k8s_kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig for launching Jobs from outside the cluster; unset, the "
        "in-cluster service account is used",
    )

    # Where each integration source is reached. The defaults are the providers'
    # own APIs; the sandbox, a provider's test server or any server speaking the
    # documented shape stands in by setting BIZOS_<SOURCE>_BASE_URL.
    stripe_base_url: str = "https://api.stripe.com"
    ga4_base_url: str = "https://analyticsdata.googleapis.com"
    crm_api_base_url: str = "http://127.0.0.1:8100/crm_api"
    saleor_base_url: str = "http://127.0.0.1:8100/saleor"
    cms_forms_base_url: str = "http://127.0.0.1:8100/cms_forms"
    ai_usage_base_url: str = "http://127.0.0.1:8100/ai_usage"
    # Amazon Selling Partner API (the North America endpoint) and the Login with
    # Amazon token endpoint that trades a tenant's refresh token for access tokens.
    sp_api_base_url: str = "https://sellingpartnerapi-na.amazon.com"
    lwa_token_url: str = "https://api.amazon.com/auth/o2/token"

    # Tenant export files (the inbox). A file over the limit is quarantined as a
    # file instead of read, so one giant upload cannot exhaust the disk or a run's
    # time; a file touched in the last few seconds may still be uploading.
    max_export_bytes: int = Field(
        default=2 * 1024**3, gt=0, description="largest export file read from an inbox, in bytes"
    )
    inbox_settle_seconds: float = Field(
        default=5.0,
        ge=0,
        description="an export modified more recently than this is skipped as still uploading",
    )

    # Supplier documents (docs/suppliers.md). A document over either limit is
    # quarantined unread ("oversized"), so one huge scan cannot hold up a tenant's run.
    max_document_bytes: int = Field(
        default=25 * 1024**2, gt=0, description="largest supplier document read, in bytes"
    )
    max_document_pages: int = Field(
        default=30, gt=0, description="most pages a supplier document may have to be read"
    )
    max_document_seconds: float = Field(
        default=120.0,
        gt=0,
        description="longest a supplier document may take to read (OCR included); "
        "one that takes longer is quarantined (`timeout`) and the batch goes on",
    )
    # Data-quality gates (docs/quality.md).
    quality_max_row_drop: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="a table whose row count for a tenant falls by more than this share "
        "against its last passing check fails its blocking row-count check",
    )
    quality_check_chunk_rows: int = Field(
        default=100_000,
        gt=0,
        description="most rows of a tenant's lake table one GX validation of the source "
        "checks holds (a frame several times their Arrow bytes); a larger table is checked "
        "in chunks, its key's uniqueness over all its rows",
    )
    freshness_hours: dict[str, float] = Field(
        default_factory=dict,
        description="freshness windows per source, in hours, over the defaults (JSON, e.g. "
        '{"stripe": 2, "ga4": 26}); a source not loaded within its window is stale',
    )
    # The LLM extractor, used only for a tenant that stored its own key
    # (`bizos credentials set --tenant T --source llm`): any OpenAI-compatible
    # chat-completions endpoint.
    llm_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="OpenAI-compatible API base URL for the LLM document extractor",
    )
    llm_model: str = Field(default="gpt-4o-mini", description="model the LLM extractor asks")
    llm_timeout_s: float = Field(
        default=60.0, gt=0, description="bound on one LLM extraction request, in seconds"
    )

    @model_validator(mode="after")
    def _cluster_needs_postgres(self) -> Settings:
        if self.database_url is None:
            if self.run_launcher is RunLauncher.K8S:
                raise ValueError(
                    "BIZOS_RUN_LAUNCHER=k8s needs BIZOS_DATABASE_URL: a run in another pod "
                    "shares Dagster's storage, the warehouse and the serving store through "
                    "Postgres; the embedded defaults live on one machine's disk"
                )
            if self.step_executor is StepExecutor.K8S:
                raise ValueError(
                    "BIZOS_STEP_EXECUTOR=k8s needs BIZOS_DATABASE_URL: steps in other pods "
                    "cannot share the embedded warehouse file"
                )
        if self.api_replica_url is not None and self.api_database_url is None:
            raise ValueError(
                "BIZOS_API_REPLICA_URL needs BIZOS_API_DATABASE_URL: keys, reviews and the "
                "change feed are the primary's (a standby refuses writes and LISTEN)"
            )
        return self

    @property
    def target(self) -> Target:
        return Target.POSTGRES if self.database_url else Target.DUCKDB

    @property
    def postgres_url(self) -> str:
        if self.database_url is None:
            raise RuntimeError("BIZOS_DATABASE_URL is not set: this needs the Postgres target")
        url = self.database_url.get_secret_value()
        return url.replace("postgresql+psycopg://", "postgresql://", 1)

    @property
    def api_postgres_url(self) -> str | None:
        """The API's login role URL (``BIZOS_API_DATABASE_URL``), None when unset."""
        if self.api_database_url is None:
            return None
        return self.api_database_url.get_secret_value().replace(
            "postgresql+psycopg://", "postgresql://", 1
        )

    @property
    def api_read_url(self) -> str | None:
        """Where the API reads published rows: the replica when one is set, else the
        API role's own URL (``BIZOS_API_REPLICA_URL``, serving/readers.py)."""
        if self.api_replica_url is None:
            return self.api_postgres_url
        return self.api_replica_url.get_secret_value().replace(
            "postgresql+psycopg://", "postgresql://", 1
        )

    @cached_property
    def postgres(self) -> PostgresParts:
        return PostgresParts(self.postgres_url)

    # Paths under BIZOS_HOME. Derived, never configured one by one, so a
    # single variable moves a whole installation.
    @property
    def inbox_dir(self) -> Path:
        return self.home / "inbox"

    @property
    def lake_on_s3(self) -> bool:
        """Whether the lake is on object storage (``lake.files.lake_root`` opens it)."""
        return bool(self.lake_url) and str(self.lake_url).startswith("s3://")

    @property
    def lake_location(self) -> str:
        """The lake's root as text: a folder, or the ``s3://bucket/prefix`` URL."""
        return str(self.lake_url).rstrip("/") if self.lake_on_s3 else str(self.lake_dir)

    @property
    def lake_dir(self) -> Path:
        """The lake's local folder; an s3:// lake has none (``lake.files.lake_root``
        gives the root of either kind)."""
        if self.lake_on_s3:
            raise RuntimeError(
                f"BIZOS_LAKE_URL is {self.lake_url}: the lake is on object storage, not a folder"
            )
        return Path(self.lake_url) if self.lake_url else self.home / "lake"

    @property
    def quarantine_dir(self) -> Path:
        return self.lake_dir / "_quarantine"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def serving_dir(self) -> Path:
        return self.home / "serving"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def dbt_project_dir(self) -> Path:
        return PROJECT_ROOT / "dbt"

    def source_pool_limit(self, source: str) -> int:
        """How many steps of ``source`` may run at once across tenants."""
        return max(1, int(self.source_concurrency.get(source, self.source_concurrency_default)))

    def base_url(self, source: str) -> str:
        """The base URL of an integration source (``BIZOS_<SOURCE>_BASE_URL``)."""
        value = getattr(self, f"{source}_base_url", None)
        if not isinstance(value, str):
            raise KeyError(f"unknown integration source {source!r}")
        return value.rstrip("/")

    @property
    def sandbox_dir(self) -> Path:
        return self.home / "sandbox"

    def tenant_inbox(self, tenant_id: str) -> Path:
        return self.inbox_dir / tenant_id

    def dbt_env(self) -> dict[str, str]:
        """Environment variables the committed ``dbt/profiles.yml`` reads."""
        env = {
            "BIZOS_HOME": str(self.home),
            "BIZOS_LAKE_DIR": self.lake_location,
            "BIZOS_WAREHOUSE_PATH": str(self.warehouse_path),
            "BIZOS_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit or _duckdb_default_memory(),
            "DBT_TARGET": self.target.value,
        }
        if self.target is Target.POSTGRES:
            pg = self.postgres
            env.update(
                BIZOS_PG_HOST=pg.host,
                BIZOS_PG_PORT=str(pg.port),
                BIZOS_PG_USER=pg.user,
                BIZOS_PG_PASSWORD=pg.password,
                BIZOS_PG_DBNAME=pg.dbname,
            )
        if self.lake_on_s3:
            # Read by lake/duckdb_s3.py (the profile's plugin) to make DuckDB's S3
            # secret in memory; never written into a file.
            env["AWS_REGION"] = self.aws_region
            if self.aws_endpoint_url:
                env["AWS_ENDPOINT_URL"] = self.aws_endpoint_url
            if self.aws_access_key_id:
                env["AWS_ACCESS_KEY_ID"] = self.aws_access_key_id
            if self.aws_secret_access_key:
                env["AWS_SECRET_ACCESS_KEY"] = self.aws_secret_access_key.get_secret_value()
        return env


def _duckdb_default_memory() -> str:
    """DuckDB's own default memory limit, 80% of the machine's memory, spelled out
    (DuckDB takes no percentage), so the profile can always set one."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{int(total * 0.8) // 2**20}MiB"


def get_settings(**overrides: object) -> Settings:
    """A fresh Settings; tests pass overrides instead of mutating the environment."""
    return Settings(**overrides)  # type: ignore[arg-type]
