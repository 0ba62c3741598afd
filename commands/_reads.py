"""Atlas reads the command modules share for previews and verification."""

from __future__ import annotations

from typing import Any

from bot.atlas import AtlasClient
from bot.atlas.errors import AtlasNotFoundError
from bot.atlas.models import ConnectedOrgConfig, IdentityProvider

__all__ = ["connected_orgs", "dump", "gone", "idp_facts", "org_names"]


def dump(model: Any) -> Any:
    """A model as Atlas returned it (extra fields included), JSON-ready, for the evidence."""
    if isinstance(model, list):
        return [dump(m) for m in model]
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def connected_orgs(atlas: AtlasClient, federation_settings_id: str) -> list[ConnectedOrgConfig]:
    configs: list[ConnectedOrgConfig] = []
    page = 1
    while True:
        result = await atlas.list_connected_org_configs(federation_settings_id, items_per_page=500, page_num=page)
        configs += result.results
        if len(result.results) < 500:
            return configs
        page += 1


async def org_names(atlas: AtlasClient, org_ids: list[str]) -> str:
    """Organisation ids with their names where the service account can see them."""
    if not org_ids:
        return "none"
    visible = {o.id: o.name for o in (await atlas.list_orgs(items_per_page=500)).results}
    return ", ".join(f"{visible[o]} ({o})" if o in visible else o for o in org_ids)


def idp_facts(idp: IdentityProvider) -> list[tuple[str, str]]:
    return [
        ("Identity provider", f"{idp.display_name or '(no name)'} ({idp.id})"),
        ("Protocol", f"{idp.protocol or 'unknown'} {idp.idp_type or ''}".strip()),
        ("Issuer", idp.issuer_uri or "unknown"),
        ("Connected organisations", str(len(idp.associated_orgs))),
    ]


async def gone(read: Any) -> bool:
    """True when the read answers 404: the target no longer exists."""
    try:
        await read
    except AtlasNotFoundError:
        return True
    return False
