"""The settings that point every connector at a sandbox serving a world, as an operator would set
them: `GET /_sandbox/settings` answers them, so a starter (`billable.sandbox_process`) configures
the loaders without reading the world itself.

The connectors read these like any deployment's settings (dlt config from the environment); the
tokens are the sandbox's, never real credentials: by default the static `sandbox-token` (the
personal-access-token analogue); `GET /_sandbox/settings?auth=oauth` answers OAuth settings instead
(QuickBooks, Harvest and Salesforce: a client registered for the asker and a token store
pre-authorised as `make authorize` leaves it; Kantata keeps the static token, having no refresh).

The firm's legal entities are the world's own (`legal_entities` in world.json); the ERP loads
their realms. The HR drop folder is the world's `hr_drop/`, where the sandbox delivers the
payroll files.
"""

from __future__ import annotations

import json
import os

from sandbox.world import World

SYSTEMS = ("SALESFORCE", "KANTATA", "HARVEST", "QUICKBOOKS")


def connection_settings(
    base_url: str, world: World | str | os.PathLike[str], oauth: dict[str, dict[str, str]] | None = None
) -> dict[str, str]:
    """The loaders' environment for a sandbox at `base_url` serving `world` (a World or its folder).

    `oauth` ({system: {key: value}}, `sandbox.servers.oauth.preauthorize`) replaces those systems'
    static token with OAuth settings (client, auth base URL, a pre-authorised token store)."""
    if not isinstance(world, World):
        world = World(world)
    settings = {
        "SOURCES__HR_DROP__DROP_FOLDER": str((world.path / "hr_drop").resolve()),
        "SOURCES__HARVEST__ACCOUNT_ID": "1",
        "FIRM__LEGAL_ENTITIES": json.dumps(world.legal_entities),
    }
    for system in SYSTEMS:
        settings[f"SOURCES__{system}__BASE_URL"] = base_url
        settings[f"SOURCES__{system}__ACCESS_TOKEN"] = "sandbox-token"
    for system, keys in (oauth or {}).items():
        del settings[f"SOURCES__{system.upper()}__ACCESS_TOKEN"]
        settings.update({f"SOURCES__{system.upper()}__{key.upper()}": value for key, value in keys.items()})
    return settings
