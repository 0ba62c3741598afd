"""Atlas reads the command modules share for previews and verification."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar, cast

from bot.actions import ExecutionContext, TargetOption
from bot.atlas import AtlasClient
from bot.atlas.errors import AtlasNotFoundError
from bot.atlas.models import ConnectedOrgConfig, IdentityProvider, Page

__all__ = [
    "all_pages",
    "cluster_targets",
    "concurrently",
    "connected_orgs",
    "dump",
    "federation_targets",
    "gone",
    "idp_facts",
    "idp_targets",
    "org_names",
]

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

PAGE_SIZE = 500
# A picker lists what a person can scroll through; past this many pages Atlas is asked no further
# and the search box narrows the rest.
MAX_PAGES = 10
# Parallel reads per listing: the client's rate limiter still applies, this only bounds the burst.
READ_CONCURRENCY = 4


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


async def org_names(ctx: ExecutionContext, org_ids: list[str]) -> str:
    """Organisation ids with their names where the service account can see them.

    The names come from the context's cache when it knows every id asked for; an id it does not
    know (an organisation created since) reloads the list.
    """
    if not org_ids:
        return "none"

    async def load() -> dict[str, str]:
        return {o.id: o.name for o in (await ctx.atlas.list_orgs(items_per_page=500)).results}

    wanted = set(org_ids)
    if ctx.cache is None:
        visible = await load()
    else:
        visible = await ctx.cache.get("org-names", load, usable=lambda names: wanted <= names.keys())
    return ", ".join(f"{visible[o]} ({o})" if o in visible else o for o in org_ids)


async def concurrently(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Two independent reads at once (a preview waits for the slower, not the sum). The first
    failure is raised as it is, not as an ExceptionGroup, and the other read is cancelled."""
    tasks = (asyncio.ensure_future(first), asyncio.ensure_future(second))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise cast(BaseException, task.exception())
        return cast(A, tasks[0].result()), cast(B, tasks[1].result())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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


async def all_pages(fetch: Callable[[int], Awaitable[Page[T]]]) -> list[T]:
    """Every item of a paged Atlas list (``pageNum`` from 1), up to :data:`MAX_PAGES` pages."""
    items: list[T] = []
    for page_num in range(1, MAX_PAGES + 1):
        page = await fetch(page_num)
        items += page.results
        if len(page.results) < PAGE_SIZE:
            break
    return items


async def _gather_limited(calls: Iterable[Awaitable[T]]) -> list[T]:
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def limited(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*(limited(c) for c in calls)))


async def _federations(atlas: AtlasClient) -> list[tuple[str, list[str]]]:
    """(federation id, names of the organisations whose federation it is), sorted by name."""
    orgs = await all_pages(lambda n: atlas.list_orgs(items_per_page=PAGE_SIZE, page_num=n))

    async def federation_of(org_id: str) -> str | None:
        try:
            return (await atlas.get_org_federation_settings(org_id)).id
        except AtlasNotFoundError:  # the organisation has no federation
            return None

    found = await _gather_limited(federation_of(o.id) for o in orgs)
    names: dict[str, list[str]] = {}
    for org, federation_id in zip(orgs, found, strict=True):
        if federation_id is not None:
            names.setdefault(federation_id, []).append(org.name)
    return sorted(names.items(), key=lambda item: (sorted(item[1]), item[0]))


async def federation_targets(atlas: AtlasClient) -> list[TargetOption]:
    return [
        TargetOption(label=f"{', '.join(sorted(orgs))} · {federation_id}", words=(federation_id,))
        for federation_id, orgs in await _federations(atlas)
    ]


async def idp_targets(atlas: AtlasClient, *, protocols: tuple[Literal["SAML", "OIDC"], ...]) -> list[TargetOption]:
    """Identity providers of every visible federation (Atlas lists only SAML unless asked)."""
    federations = await _federations(atlas)

    async def idps_of(federation_id: str) -> list[IdentityProvider]:
        return await all_pages(
            lambda n: atlas.list_identity_providers(
                federation_id,
                protocol=protocols,
                items_per_page=PAGE_SIZE,
                page_num=n,
            )
        )

    listed = await _gather_limited(idps_of(f) for f, _ in federations)
    options: list[TargetOption] = []
    for (federation_id, orgs), idps in zip(federations, listed, strict=True):
        for idp in sorted(idps, key=lambda i: (i.display_name or "", i.id)):
            options.append(
                TargetOption(
                    label=f"{idp.display_name or idp.id} ({idp.protocol or '?'}) · {', '.join(sorted(orgs))}",
                    words=(federation_id, idp.id),
                )
            )
    return options


async def cluster_targets(atlas: AtlasClient) -> list[TargetOption]:
    """Clusters of every visible project, labelled project / cluster."""
    projects = await all_pages(lambda n: atlas.list_projects(items_per_page=PAGE_SIZE, page_num=n))
    projects = sorted((p for p in projects if p.cluster_count), key=lambda p: (p.name, p.id))
    listed = await _gather_limited(
        all_pages(lambda n, g=p.id: atlas.list_clusters(g, items_per_page=PAGE_SIZE, page_num=n)) for p in projects
    )
    return [
        TargetOption(label=f"{project.name} / {cluster.name}", words=(project.id, cluster.name))
        for project, clusters in zip(projects, listed, strict=True)
        for cluster in sorted(clusters, key=lambda c: c.name)
    ]
