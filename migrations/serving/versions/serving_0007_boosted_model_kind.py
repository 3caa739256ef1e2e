"""A lead model card may name gradient-boosted stumps (``tenant_boosted``).

The lead model tries boosting beside the regression and keeps it where it wins
on the held-out period (scoring/model.py); the card's ``score_model`` check
(serving_0005) knew only the regression, the pooled model and the rules.

Revision ID: serving_0007
Revises: serving_0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "serving_0007"
down_revision: str | None = "serving_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "lead_model_cards_score_model_check"


def upgrade() -> None:
    op.execute(f"ALTER TABLE serving.lead_model_cards DROP CONSTRAINT {CHECK}")
    op.execute(
        f"ALTER TABLE serving.lead_model_cards ADD CONSTRAINT {CHECK} CHECK (score_model IN"
        " ('tenant_logreg', 'tenant_boosted', 'pooled_logreg', 'rules_v0'))"
    )


def downgrade() -> None:
    op.execute(f"ALTER TABLE serving.lead_model_cards DROP CONSTRAINT {CHECK}")
    op.execute(
        f"ALTER TABLE serving.lead_model_cards ADD CONSTRAINT {CHECK} CHECK (score_model IN"
        " ('tenant_logreg', 'pooled_logreg', 'rules_v0'))"
    )
