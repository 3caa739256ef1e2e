"""The obvious serving endpoint, kept as the baseline ``bench/serving_api.py`` measures.

What one would write first with FastAPI and async psycopg: look the key's hash up,
then select the lead by tenant and id, and return the pydantic model. Same data,
same key table and same lead query as the real API; none of its isolation (it
reads as the table owner), caching or error handling.

    BENCH_DATABASE_URL=postgresql://... uvicorn bench.obvious_endpoint:app
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from serving.schemas import LeadScorePublic

pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
    os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"),
    min_size=4,
    max_size=16,
    open=False,
)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await pool.open()
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/v1/leads/{lead_id}/score")
async def lead_score(lead_id: str, x_api_key: Annotated[str, Header()]) -> LeadScorePublic:
    key_hash = hashlib.sha256(x_api_key.encode()).hexdigest()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT tenant_id FROM ops.api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            [key_hash],
        )
        key = await cur.fetchone()
        if key is None:
            raise HTTPException(401, "invalid API key")
        rows = conn.cursor(row_factory=dict_row)
        await rows.execute(
            "SELECT * FROM serving.lead_scores WHERE tenant_id = %s AND lead_id = %s",
            [key[0], lead_id],
        )
        row = await rows.fetchone()
    if row is None:
        raise HTTPException(404, "lead not found")
    return LeadScorePublic.from_row(row)
