"""revoke-jwks: revoke the JSON Web Key Set of an OIDC identity provider."""

from __future__ import annotations

from bot.actions import ActionSpec, Argument, ExecutionContext, TargetOption, TargetSource
from bot.preview import Fact, Preview
from commands._fields import OBJECT_ID, Args, ObjectId
from commands._reads import concurrently, connected_orgs, dump, idp_facts, idp_targets, org_names


class RevokeJwksArgs(Args):
    federation_settings_id: ObjectId
    identity_provider_id: ObjectId


async def _execute(ctx: ExecutionContext, args: RevokeJwksArgs) -> None:
    await ctx.atlas.revoke_identity_provider_jwks(
        federation_settings_id=args.federation_settings_id,
        identity_provider_id=args.identity_provider_id,
    )


async def _preview(ctx: ExecutionContext, args: RevokeJwksArgs) -> Preview:
    idp, orgs = await concurrently(
        ctx.atlas.get_identity_provider(args.federation_settings_id, args.identity_provider_id),
        connected_orgs(ctx.atlas, args.federation_settings_id),
    )
    affected = [c.org_id for c in idp.associated_orgs] or [c.org_id for c in orgs]
    blockers = []
    if idp.protocol != "OIDC":
        blockers.append(
            f"JWKS revocation applies only to OIDC identity providers; this one is {idp.protocol or 'not OIDC'}. "
            "Atlas would refuse it."
        )
    facts = [Fact(label=k, value=v) for k, v in idp_facts(idp)]
    facts.append(Fact(label="Organisations logged out", value=await org_names(ctx, affected)))
    return Preview(
        facts=tuple(facts),
        blockers=tuple(blockers),
        warnings=(f"Every user of {len(affected)} organisation(s) is logged out at once.",) if affected else (),
        evidence={"identityProvider": dump(idp), "connectedOrgConfigs": dump(orgs)},
    )


async def _targets(source: TargetSource) -> list[TargetOption]:
    # JWKS revocation applies to OIDC identity providers only.
    return await idp_targets(source.atlas, protocols=("OIDC",))


ACTION = ActionSpec(
    name="revoke-jwks",
    title="Revoke IdP JWKS",
    arguments=(
        Argument(field="federation_settings_id", label="federationSettingsId", pattern=OBJECT_ID),
        Argument(field="identity_provider_id", label="identityProviderId", pattern=OBJECT_ID),
    ),
    args_model=RevokeJwksArgs,
    describe=lambda a: (
        f"Revoke the JWKS of OIDC identity provider `{a.identity_provider_id}` "
        f"in federation `{a.federation_settings_id}`."
    ),
    impact=(
        "Atlas refreshes this identity provider's public keys on all clusters. Every access token it "
        "signed stops working and all of its users are logged out; applications may need a restart. "
        "Every organisation connected to this IdP is affected. Only OIDC identity providers have a JWKS."
    ),
    confirm_field="identity_provider_id",
    execute=_execute,
    atlas_role="Organization Owner in one of the connected organisations",
    target_label=lambda a: f"IdP {a.identity_provider_id} (federation {a.federation_settings_id})",
    preview=_preview,
    targets=_targets,
    target_noun="OIDC identity provider",
)
