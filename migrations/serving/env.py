"""Alembic entry point of the serving tree (see migrations/__init__.py)."""

from migrations.env import run

run()
