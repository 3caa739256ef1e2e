"""The dbt project on Spark: its virtualenv, its environment, one build.

dbt-spark runs in ``session`` mode (pyspark ``local[*]`` inside dbt's own process) from
a virtualenv of its own, ``.spark-venv``, built from ``spark/requirements.txt`` and
``spark/constraints.txt`` as Superset's is: pyspark (~450 MB with its jars) is needed by
this target only, so the platform's environment does not carry it. The same dbt-core as
the platform's (uv.lock) parses the same project.

A build runs ``spark/dbt_spark.py`` with that venv's Python: it starts the session,
registers the lake as ``raw.*`` views and runs dbt in the same process. Which models
build on Spark is the ``spark`` selector of dbt/selectors.yml (docs/architecture.md says
what is left out and why). The metastore (Derby) and the tables live under
``BIZOS_HOME/spark``; Derby takes one process at a time, so builds queue on a file lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from core.settings import PROJECT_ROOT, Settings
from warehouse.dbt_runs import TENANT_ENV, die_with_parent

SPARK_DIR = PROJECT_ROOT / "spark"
REQUIREMENTS = SPARK_DIR / "requirements.txt"
CONSTRAINTS = SPARK_DIR / "constraints.txt"
LAUNCHER = SPARK_DIR / "dbt_spark.py"
STEP_SEPARATOR = "--and-then"
"""Between two dbt invocations in one Spark process (spark/dbt_spark.py)."""
SELECTOR = "spark"
"""dbt/selectors.yml: the nodes that build on Spark."""


class SparkTargetError(RuntimeError):
    """The Spark target cannot be set up or its build failed; the message says where."""


def spark_python(settings: Settings) -> Path:
    return settings.spark_venv / "bin" / "python"


def spark_state_dir(settings: Settings) -> Path:
    """Metastore, warehouse tables and Derby's log of the spark target."""
    return settings.home / "spark"


def spark_table_dir(settings: Settings, schema: str, table: str) -> Path:
    """Where Spark keeps a managed table's Parquet files (``<schema>.db/<table>``)."""
    return spark_state_dir(settings) / "warehouse" / f"{schema}.db" / table


def _uv() -> str:
    found = shutil.which("uv") or str(PROJECT_ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        raise SparkTargetError("uv not found (PATH or .tools/bin/uv): run `make env` first")
    return found


def ensure_spark_venv(settings: Settings) -> bool:
    """Build the Spark venv if it is missing or older than its requirements."""
    venv = settings.spark_venv
    stamp = venv / ".synced"
    inputs = max(REQUIREMENTS.stat().st_mtime, CONSTRAINTS.stat().st_mtime)
    python = spark_python(settings)
    if stamp.exists() and stamp.stat().st_mtime >= inputs and python.exists():
        return False
    uv = _uv()
    if not python.exists():
        _run([uv, "venv", "--python", "3.11", str(venv)])
    _run(
        [uv, "pip", "install", "--python", str(python), "--compile-bytecode"]
        + ["-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS)]
    )
    stamp.touch()
    return True


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SparkTargetError(f"{Path(cmd[0]).name} failed:\n{done.stderr[-3000:]}")


def spark_dbt_env(settings: Settings, run_dir: Path, tenant: str | None = None) -> dict[str, str]:
    """The environment of a Spark build: the profile's variables, this run's folders,
    the session's settings; none of the platform's secrets (the target needs none)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIZOS_", "DAGSTER_"))}
    env.update({k: v for k, v in settings.dbt_env().items() if not k.startswith("BIZOS_PG_")})
    env.update(
        DBT_TARGET="spark",
        DBT_TARGET_PATH=str(run_dir / "target"),
        DBT_LOG_PATH=str(run_dir / "logs"),
        DBT_USE_COLORS="false",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        BIZOS_SPARK_MASTER=settings.spark_master,
        BIZOS_SPARK_SHUFFLE_PARTITIONS=str(settings.spark_shuffle_partitions),
        BIZOS_SPARK_DRIVER_MEMORY=settings.spark_driver_memory,
        PYTHONDONTWRITEBYTECODE="1",
    )
    if tenant:
        env[TENANT_ENV] = tenant
    return env


@dataclass(frozen=True)
class SparkBuild:
    """What one build did: dbt's exit code and its output."""

    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def spark_build(
    settings: Settings,
    run_dir: Path,
    *dbt_args: str,
    tenant: str | None = None,
    selector: str | None = SELECTOR,
    then: Sequence[Sequence[str]] = (),
) -> SparkBuild:
    """``dbt build`` of the Spark selection (or ``dbt_args``' own) in one Spark process.

    Each of ``then`` is the arguments of one more ``dbt build``, run after it in the
    same Spark session (spark/dbt_spark.py: one JVM start for all of them).

    The child asks the kernel to kill it with this process, in a process group of its
    own (as warehouse/dbt_runs.py does for dbt), so a killed run never leaves a JVM
    behind holding the metastore.
    """
    ensure_spark_venv(settings)
    project = str(settings.dbt_project_dir)
    args = ["build", "--project-dir", project, "--profiles-dir", project]
    if selector:
        args += ["--selector", selector]
    args += list(dbt_args)
    for step in then:
        args += [STEP_SEPARATOR, "build", "--project-dir", project, "--profiles-dir", project]
        args += list(step)
    state = spark_state_dir(settings)
    (settings.home / "locks").mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.home / "locks" / "spark-metastore.lock")):
        state.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        done = subprocess.run(
            [str(spark_python(settings)), str(LAUNCHER), *args],
            # anything Spark writes relative to its working folder stays in its state
            cwd=state,
            env=spark_dbt_env(settings, run_dir, tenant),
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=lambda: die_with_parent(parent),
            process_group=0,
        )
    return SparkBuild(done.returncode, f"{done.stdout}\n{done.stderr}")


def main(argv: list[str]) -> int:
    """``python -m warehouse.spark_target env|build [dbt args]`` (the Makefile's targets)."""
    from core.settings import get_settings

    settings = get_settings()
    if argv[:1] == ["env"]:
        print("built" if ensure_spark_venv(settings) else "up to date")
        return 0
    if argv[:1] == ["build"]:
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        run_dir = settings.home / "dbt" / "runs" / f"{stamp}-spark"
        args = argv[1:]
        # a selection of one's own replaces the `spark` selector (dbt takes one or the other)
        own = any(a in ("-s", "--select", "--selector") for a in args)
        build = spark_build(
            settings,
            run_dir,
            *args,
            tenant=os.environ.get(TENANT_ENV) or None,
            selector=None if own else SELECTOR,
        )
        print(build.output)
        return build.returncode
    print("usage: python -m warehouse.spark_target env|build [dbt args]")
    return 2


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
