"""The Dagster resource that hands the platform's settings to every asset."""

from dagster import ConfigurableResource

from core.settings import Settings, get_settings


class BizosSettings(ConfigurableResource):
    """Unset fields fall back to the environment, as `Settings` does.

    Tests pass ``home`` and ``database_url`` explicitly; a deployment leaves them
    unset and sets ``BIZOS_*`` in the environment, so no secret sits in run config.
    """

    home: str | None = None
    database_url: str | None = None

    def get(self) -> Settings:
        overrides: dict[str, object] = {}
        if self.home is not None:
            overrides["home"] = self.home
        if self.database_url is not None:
            overrides["database_url"] = self.database_url or None
        return get_settings(**overrides)
