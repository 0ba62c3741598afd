"""delete-idp: delete an identity provider from a federation."""

from __future__ import annotations

from bot.actions import ActionSpec, Argument, ExecutionContext, TargetOption, TargetSource
from bot.atlas import AtlasClient
from bot.preview import Fact, Preview
from commands._fields import OBJECT_ID, Args, ObjectId
from commands._reads import concurrently, connected_orgs, dump, gone, idp_facts, idp_targets, org_names


class DeleteIdpArgs(Args):
    federation_settings_id: ObjectId
    identity_provider_id: ObjectId


async def _execute(ctx: ExecutionContext, args: DeleteIdpArgs) -> None:
    await ctx.atlas.delete_identity_provider(
        federation_settings_id=args.federation_settings_id,
        identity_provider_id=args.identity_provider_id,
    )


async def _preview(ctx: ExecutionContext, args: DeleteIdpArgs) -> Preview:
    idp, orgs = await concurrently(
        ctx.atlas.get_identity_provider(args.federation_settings_id, args.identity_provider_id),
        connected_orgs(ctx.atlas, args.federation_settings_id),
    )
    users = [c.org_id for c in idp.associated_orgs]
    blockers = []
    if len(users) > 1:
        blockers.append(
            f"This identity provider is connected to {len(users)} organisations; Atlas refuses to delete one "
            "that more than one organisation uses. Disconnect it from the others first."
        )
    facts = [Fact(label=k, value=v) for k, v in idp_facts(idp)]
    facts.append(Fact(label="Used by", value=await org_names(ctx, users)))
    return Preview(
        facts=tuple(facts),
        blockers=tuple(blockers),
        warnings=(f"Users of {len(users)} organisation(s) lose sign-in through this IdP.",) if users else (),
        evidence={"identityProvider": dump(idp), "connectedOrgConfigs": dump(orgs)},
    )


async def _verify(atlas: AtlasClient, args: DeleteIdpArgs) -> bool:
    return await gone(atlas.get_identity_provider(args.federation_settings_id, args.identity_provider_id))


async def _targets(source: TargetSource) -> list[TargetOption]:
    return await idp_targets(source.atlas, protocols=("SAML", "OIDC"))


ACTION = ActionSpec(
    name="delete-idp",
    title="Delete identity provider",
    arguments=(
        Argument(field="federation_settings_id", label="federationSettingsId", pattern=OBJECT_ID),
        Argument(field="identity_provider_id", label="identityProviderId", pattern=OBJECT_ID),
    ),
    args_model=DeleteIdpArgs,
    describe=lambda a: (
        f"Delete identity provider `{a.identity_provider_id}` from federation `{a.federation_settings_id}`."
    ),
    impact=(
        "Users who sign in through this identity provider can no longer log in to Atlas through it. "
        "Atlas refuses the deletion if the IdP is connected to more than one organisation or to an "
        "organisation the service account does not own. It cannot be undone: the IdP must be recreated "
        "and reconnected by hand."
    ),
    confirm_field="identity_provider_id",
    execute=_execute,
    atlas_role="Organization Owner",
    target_label=lambda a: f"IdP {a.identity_provider_id} (federation {a.federation_settings_id})",
    preview=_preview,
    verify=_verify,
    verified_state="the identity provider is gone",
    targets=_targets,
    target_noun="identity provider",
)
