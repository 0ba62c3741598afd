"""delete-federation: delete a federation and everything in it."""

from __future__ import annotations

from bot.actions import ActionSpec, Argument, ExecutionContext, TargetOption, TargetSource
from bot.atlas import AtlasClient
from bot.preview import Fact, Preview
from commands._fields import OBJECT_ID, Args, ObjectId
from commands._reads import concurrently, connected_orgs, dump, federation_targets, gone, org_names


class DeleteFederationArgs(Args):
    federation_settings_id: ObjectId


async def _execute(ctx: ExecutionContext, args: DeleteFederationArgs) -> None:
    await ctx.atlas.delete_federation_settings(federation_settings_id=args.federation_settings_id)


async def _preview(ctx: ExecutionContext, args: DeleteFederationArgs) -> Preview:
    orgs, idp_page = await concurrently(
        connected_orgs(ctx.atlas, args.federation_settings_id),
        ctx.atlas.list_identity_providers(
            args.federation_settings_id,
            protocol=["SAML", "OIDC"],
            idp_type=["WORKFORCE", "WORKLOAD"],
            items_per_page=500,
        ),
    )
    idps = idp_page.results
    blockers = []
    if len(orgs) > 1:
        blockers.append(
            f"{len(orgs)} organisations are still connected; Atlas deletes a federation only when one is left. "
            "Disconnect the others first."
        )
    names = ", ".join(f"{i.display_name or i.id} ({i.protocol})" for i in idps) or "none"
    return Preview(
        facts=(
            Fact(label="Connected organisations", value=await org_names(ctx, [o.org_id for o in orgs])),
            Fact(label="Identity providers deleted with it", value=names),
        ),
        blockers=tuple(blockers),
        warnings=(f"Deletes {len(idps)} identity provider(s) and every federated domain of this federation.",),
        evidence={"connectedOrgConfigs": dump(orgs), "identityProviders": dump(idps)},
    )


async def _verify(atlas: AtlasClient, args: DeleteFederationArgs) -> bool:
    return await gone(atlas.list_connected_org_configs(args.federation_settings_id))


async def _targets(source: TargetSource) -> list[TargetOption]:
    return await federation_targets(source.atlas)


ACTION = ActionSpec(
    name="delete-federation",
    title="Delete federation",
    arguments=(Argument(field="federation_settings_id", label="federationSettingsId", pattern=OBJECT_ID),),
    args_model=DeleteFederationArgs,
    describe=lambda a: f"Delete federation settings `{a.federation_settings_id}`.",
    impact=(
        "Deletes the federation and all of its data, including its identity providers and domains. "
        "Federated sign-in stops for every user of it. Atlas refuses while more than one organisation "
        "is still connected. It cannot be undone."
    ),
    confirm_field="federation_settings_id",
    execute=_execute,
    atlas_role="Organization Owner in the last remaining connected organisation",
    target_label=lambda a: f"federation {a.federation_settings_id}",
    preview=_preview,
    verify=_verify,
    verified_state="the federation is gone",
    targets=_targets,
    target_noun="federation",
)
