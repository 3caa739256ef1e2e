"""The caller's lead model card: which model scores its leads, its weights and metrics."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response

from core.contracts.lead_model_cards import LEAD_MODEL_CARDS
from serving.deps import ReaderDep, ScoresReader
from serving.readers import Encoder
from serving.routes.responses import DATA_ERRORS, encoder, json_body, not_modified, wanted_versions
from serving.schemas import LeadModelCardPublic, ProblemPublic
from serving.store import NothingPublished

router = APIRouter(prefix="/v1/leads", tags=["lead scores"], responses=DATA_ERRORS)

encode_card: Encoder = encoder(LeadModelCardPublic)


@router.get(
    "/model",
    summary="The tenant's lead model card",
    response_model=LeadModelCardPublic,
    responses={404: {"model": ProblemPublic, "description": "No model has run for this tenant"}},
)
async def get_lead_model(request: Request, reader: ReaderDep, key: ScoresReader) -> Response:
    """Which model scores the caller's leads (its own logistic regression, the pooled one,
    or the rules, and why), its features with weights and scaling, its custom attributes
    and what became of each, and how it did on the held-out period against the rules:
    AUC, log loss, calibration by decile, label counts. Only ever the caller's tenant.
    """
    try:
        result = await reader.list_rows(
            LEAD_MODEL_CARDS,
            encode_card,
            tenant_id=key.tenant_id,
            equals=None,
            at_least=None,
            after=None,
            limit=1,
            unless_version=wanted_versions(request, LEAD_MODEL_CARDS),
        )
    except NothingPublished:
        # No card for anyone yet (the lead model has not run since the upgrade): the
        # same answer as for a tenant without one, not "the API is not ready".
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "no lead model card for this tenant yet"
        ) from None
    if result.rows is None:
        return not_modified(LEAD_MODEL_CARDS, result.version)
    if not result.rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no lead model card for this tenant yet")
    return json_body(LEAD_MODEL_CARDS, result.version, result.rows[0].body)
