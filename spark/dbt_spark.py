"""dbt on Spark in one process: a local Spark session, the lake registered as views, then dbt.

Run with the Spark venv's Python (``.spark-venv/bin/python spark/dbt_spark.py build ...``;
warehouse/spark_target.py does), never the platform's: this file imports only pyspark,
dbt and the standard library, which is all that venv holds.

Why one process: dbt-spark's ``session`` method runs Spark inside dbt's own process
(``SparkSession.builder.getOrCreate()``), so the session this script starts first is the
one dbt uses. Here it gets what dbt-spark's profile cannot give it: the JVM settings
(memory, Derby's home) that must be fixed before the JVM starts, and the lake.

The lake: every ``lake/<source>/<table>`` folder with Parquet files becomes a view
``raw.<source>__<table>`` over a glob of its files (``parquet.`<glob>```), the same
relations the sources name on Postgres (schema ``raw``), read with ``mergeSchema`` as
DuckDB reads them with ``union_by_name`` (a table whose files disagree on a column's
type, which ``mergeSchema`` refuses, is copied into the metastore with that column read
as text: ``register_drifting``). Partition discovery is off, as on DuckDB:
``tenant_id`` is a column of every file already, and a ``month=`` folder would shadow
GA4's ``month`` column. A folder with no files gets no view (an old one is dropped), and
``lake_source()`` then stands in an empty typed relation, as on the other targets.
Views are persistent (in the Hive metastore under ``BIZOS_HOME/spark``) because the
staging models are persistent views over them, which Spark does not allow over
temporary views.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from glob import iglob
from pathlib import Path

ENV_PREFIX = "BIZOS_SPARK_"
STEP_SEPARATOR = "--and-then"
DRIFT_ERRORS = ("CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE", "FAILED_TO_CREATE_PLAN_FOR_DIRECT_QUERY")
"""How Spark refuses a glob whose files disagree on a column's type (``drifting_select``)."""


def spark_home(home: Path) -> Path:
    return home / "spark"


def session_config(home: Path) -> dict[str, str]:
    """Settings of the local session: small and quiet for one machine, overridable by env.

    ``BIZOS_SPARK_SHUFFLE_PARTITIONS`` (default 4: Spark's 200 is for clusters and costs
    seconds per join on small data), ``BIZOS_SPARK_DRIVER_MEMORY`` (default 1g),
    ``BIZOS_SPARK_MASTER`` (default ``local[*]``).
    """
    state = spark_home(home)
    metastore = state / "metastore_db"
    return {
        "spark.master": os.environ.get(ENV_PREFIX + "MASTER", "local[*]"),
        "spark.app.name": "bizos-dbt",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": os.environ.get(ENV_PREFIX + "DRIVER_MEMORY", "1g"),
        "spark.sql.shuffle.partitions": os.environ.get(ENV_PREFIX + "SHUFFLE_PARTITIONS", "4"),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.warehouse.dir": str(state / "warehouse"),
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={metastore};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={state}",
        # Days and weeks in UTC, as the macros expect (also in profiles.yml).
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.mergeSchema": "true",
        # Tables any Parquet reader (DuckDB, pyarrow) reads as UTC instants, not INT96.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }


def lake_globs(lake: Path) -> dict[str, str]:
    """``<source>__<table>`` -> the glob of its Parquet files, for folders holding any.

    Files sit at one depth under a table (``tenant=<t>/part.parquet`` or
    ``tenant=<t>/month=<m>/part.parquet``, connectors/landing.py); a table with two
    depths is an error, since one glob would miss files.
    """
    globs: dict[str, str] = {}
    if not lake.is_dir():
        return globs
    for source in sorted(p for p in lake.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for table in sorted(p for p in source.iterdir() if p.is_dir()):
            depths = {
                len(f.relative_to(table).parts)
                for f in table.rglob("*.parquet")
                if not any(part.startswith((".", "_")) for part in f.relative_to(table).parts)
            }
            if not depths:
                continue
            if len(depths) > 1:
                raise SystemExit(
                    f"lake table {table} has Parquet files at depths {sorted(depths)}:"
                    " expected one layout (tenant=<t>/[month=<m>/]<file>.parquet)"
                )
            depth = depths.pop()
            pattern = "/".join(["tenant=*"] + ["*"] * (depth - 2) + ["*.parquet"])
            globs[f"{source.name}__{table.name}"] = f"{table}/{pattern}"
    return globs


def register_lake(spark: object, lake: Path) -> list[str]:
    """(Re)create ``raw.<table>`` views over the lake (a table copied from it where its
    files disagree on a column's type: ``register_drifting``); drop those whose files
    are gone."""
    sql = spark.sql  # type: ignore[attr-defined]
    sql("create database if not exists raw")
    globs = lake_globs(lake)
    existing = {row.tableName for row in sql("show tables in raw").collect()}
    views = {row.viewName for row in sql("show views in raw").collect()}
    copies = existing - views
    for name in sorted(existing - set(globs)):
        sql(f"drop {'table' if name in copies else 'view'} if exists raw.`{name}`")
    for name, glob in globs.items():
        if "`" in glob:
            raise SystemExit(f"lake path {glob!r} holds a backquote; Spark cannot name it")
        if name in copies:  # a copy of an earlier build, where the files disagreed
            sql(f"drop table raw.`{name}`")
        try:
            sql(f"create or replace view raw.`{name}` as select * from parquet.`{glob}`")
        except Exception as exc:  # pyspark's AnalysisException, from the JVM
            if not any(m in str(exc) for m in DRIFT_ERRORS):
                raise
            register_drifting(spark, name, glob)
    return sorted(globs)


def register_drifting(spark: object, name: str, glob: str) -> None:
    """``raw.<name>`` for a table whose files disagree on a column's type, which
    ``mergeSchema`` refuses (a field that was text in one batch and a number in
    another): the files grouped by their schema, each group read on its own, a column
    of one type everywhere kept as it is, one of several types read as text, a column
    a group lacks as null (the columns and types DuckDB's ``union_by_name`` and the
    landing's ``concat_drifting`` give), the groups' rows put together and written
    as a table of the metastore. A table, not a view: a view's text would have to
    name every file, and the metastore keeps at most 32,700 characters of it. The
    copy is made again at every build, for this table only."""
    from functools import reduce

    from pyspark.sql import functions as F  # noqa: N812

    read = spark.read.option("mergeSchema", "false")  # type: ignore[attr-defined]
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for path in sorted(iglob(glob)):
        schema = tuple((f.name, f.dataType.simpleString()) for f in read.parquet(path).schema)
        groups.setdefault(schema, []).append(path)
    types: dict[str, set[str]] = {}
    for schema in groups:
        for column, kind in schema:
            types.setdefault(column, set()).add(kind)
    unified = {}
    for column, kinds in types.items():
        typed = kinds - {"void"}  # a column null in every row of a file
        unified[column] = next(iter(typed)) if len(typed) == 1 else "string"
    frames = []
    for schema, paths in groups.items():
        present = dict(schema)
        frames.append(
            read.parquet(*paths).select(
                *(
                    (F.col(f"`{c}`") if c in present else F.lit(None)).cast(kind).alias(c)
                    for c, kind in unified.items()
                )
            )
        )
    mixed = sorted(c for c, kinds in types.items() if len(kinds - {"void"}) > 1)
    print(
        f"spark: raw.{name}: files disagree on the type of {', '.join(mixed)}:"
        f" copied from {len(groups)} groups of files, read as text",
        flush=True,
    )
    rows = reduce(lambda a, b: a.unionByName(b), frames)
    spark.sql(f"drop view if exists raw.`{name}`")  # type: ignore[attr-defined]
    rows.write.mode("overwrite").format("parquet").saveAsTable(f"raw.`{name}`")


def main(argv: list[str]) -> int:
    home = Path(os.environ["BIZOS_HOME"])
    lake = Path(os.environ["BIZOS_LAKE_DIR"])
    spark_home(home).mkdir(parents=True, exist_ok=True)
    # A local session talks to itself: no lookup of the host's name (and no warning).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    started = time.monotonic()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in session_config(home).items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # pyspark logs every failed statement with its JVM stack as JSON; dbt reports
    # the error itself, once and readably.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    registered = register_lake(spark, lake)
    print(
        f"spark: session up and {len(registered)} lake tables registered"
        f" in {time.monotonic() - started:.1f}s",
        flush=True,
    )
    from dbt.cli.main import dbtRunner

    try:
        for step in steps(argv):
            started = time.monotonic()
            result = dbtRunner().invoke(step)
            print(f"spark: dbt {step[0]} took {time.monotonic() - started:.1f}s", flush=True)
            if result.exception is not None:
                print(f"dbt failed: {result.exception}", file=sys.stderr)
                return 2
            if not result.success:
                return 1
        return 0
    finally:
        spark.stop()


def steps(argv: list[str]) -> list[list[str]]:
    """dbt invocations separated by ``--and-then``, run in order in one session.

    A run builds the project in more than one dbt step (the lead model sits between
    the intermediate models and the marts); one JVM and metastore start serves them
    all. A step that fails stops the rest.
    """
    found: list[list[str]] = [[]]
    for arg in argv:
        if arg == STEP_SEPARATOR:
            found.append([])
        else:
            found[-1].append(arg)
    if any(not step for step in found):
        raise SystemExit(f"an empty dbt step in {argv!r}")
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
