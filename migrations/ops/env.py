"""Alembic entry point of the ops tree (see migrations/__init__.py)."""

from migrations.env import run

run()
