"""All routers of the serving API, collected in one place for ``main.create_app``."""

from fastapi import APIRouter

from serving.routes import health, lead_model, lead_scores, sourcing, suppliers

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(lead_scores.router)
api_router.include_router(lead_model.router)
api_router.include_router(suppliers.router)
api_router.include_router(sourcing.router)
