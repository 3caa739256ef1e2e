"""Serving layer: publishes mart rows atomically and serves them over a tenant-bound API.

Entry points other parts call:
- ``serving.publish.publish_lead_scores``: swap one tenant's scores into the serving store.
- ``serving.queries.top_lead_scores``: read a tenant's best leads (demo printout, scripts).
- ``serving.keys.create_key`` / ``resolve_key`` / ``revoke_key``: tenant-bound API keys.
- ``serving.main.create_app`` / ``serve``: the FastAPI app and a uvicorn runner.
"""
