"""revoke-token: revoke a service account access token (a leaked one, typically).

The token is typed only into the modal, never on the command line. It is sealed until the
request ends and only its fingerprint is ever shown or stored in the clear.
"""

from __future__ import annotations

from bot.actions import ActionSpec, Argument, ExecutionContext, SecretInput, TargetOption, TargetSource
from bot.preview import Fact, Preview
from commands._fields import PROFILE_NAME, Args, ProfileName


class RevokeTokenArgs(Args):
    profile: ProfileName = "default"


async def _execute(ctx: ExecutionContext, args: RevokeTokenArgs) -> None:
    if ctx.secret is None or ctx.service_account is None:
        raise RuntimeError("revoke-token needs the sealed token and the profile's credentials")
    client_id, client_secret = ctx.service_account
    await ctx.atlas.revoke_service_account_token(token=ctx.secret, client_id=client_id, client_secret=client_secret)


async def _preview(ctx: ExecutionContext, args: RevokeTokenArgs) -> Preview:
    # A token cannot be read back from Atlas; the pre-flight check is that the profile can sign the call.
    if ctx.service_account is None:
        return Preview(
            facts=(Fact(label="Profile", value=args.profile),),
            blockers=(f"Profile `{args.profile}` has no service account credentials in the bot's environment.",),
        )
    return Preview(
        facts=(
            Fact(label="Profile", value=args.profile),
            Fact(label="Service account", value=ctx.service_account[0]),
        )
    )


async def _targets(source: TargetSource) -> list[TargetOption]:
    # The token itself is typed into the confirmation form; the picker only chooses the profile.
    return [TargetOption(label=f"profile {name}", words=(name,)) for name in source.profiles]


ACTION = ActionSpec(
    name="revoke-token",
    title="Revoke access token",
    arguments=(Argument(field="profile", label="profile", pattern=PROFILE_NAME, optional=True),),
    args_model=RevokeTokenArgs,
    describe=lambda a: f"Revoke an access token of the service account of profile `{a.profile}`.",
    impact=(
        "Anything still using this access token gets 401 Unauthorized from Atlas at once and must "
        "fetch a new token. The service account itself and its other tokens keep working."
    ),
    confirm_field="profile",
    execute=_execute,
    atlas_role="the service account that issued the token (its own client id and secret)",
    secret_input=SecretInput(
        label="Access token to revoke",
        hint="Paste the token here only. The bot stores a sealed copy until the request ends and shows "
        "only the first 8 hex digits of its SHA-256.",
    ),
    target_label=lambda a: f"a token of profile {a.profile}",
    preview=_preview,
    targets=_targets,
    target_noun="service account profile",
)
