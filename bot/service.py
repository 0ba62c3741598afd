"""The /atlas flow: request, confirm, approve or reject, execute exactly once, report.

Listeners (:mod:`bot.slack.listeners`) ack Slack, turn payloads into the small input values
below and call one method here. Every state change goes through the store's conditional
transitions, so a double click, two approvers at once, or two replicas racing can never run an
action twice: whoever loses a transition simply stops. Slack messages are best effort: a
failed post is logged and counted, never allowed to lose or re-run a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions import ActionSpec, ExecutionContext, ReadCache, TargetSource, parse_command
from bot.atlas import AtlasClient
from bot.atlas.errors import AtlasError, AtlasNotFoundError
from bot.errors import ChatOpsError, InvalidCommand, RequestNotFound, StaleRequest, StoreUnavailable
from bot.intake import ClickInput, CommandInput, Intake, MessageLocation, SubmissionInput, ValidSubmission
from bot.lease import HAND_BACK_SECONDS, Lease, leased
from bot.logs import bind_request_id
from bot.metrics import Metrics
from bot.outcomes import outcome_from_error, state_for, success_outcome
from bot.picker import TargetCatalog
from bot.policy import Actor, Policy, decide_approve, decide_request, roles_of
from bot.preview import Preview, preview_unavailable
from bot.requests import ActionRequest, NewActionRequest, Outcome, RequestState
from bot.sealing import Sealer, SealError, fingerprint
from bot.slack.blockkit import view_dict
from bot.slack.directory import Directory
from bot.store import ExecutionClaim, Store
from bot.views import (
    PICK_ACTION_BLOCK,
    PICK_TARGET_BLOCK_PREFIX,
    Message,
    approval_message,
    confirm_modal,
    escape_mrkdwn,
    help_message,
    home_view,
    pending_message,
    picker_modal,
    plain_message,
    target_options,
    truncate,
)
from bot.work_loop import finish_or_cancel

__all__ = [
    "ChatOps",
    "ClickInput",
    "CommandInput",
    "Confirmation",
    "Intake",
    "MessageLocation",
    "SubmissionInput",
    "ValidSubmission",
]

log = logging.getLogger(__name__)

# A preview is a few Atlas reads; past this the modal says Atlas could not be read.
PREVIEW_TIMEOUT_SECONDS = 8.0
# The same reads just before an approved request runs. Nobody is waiting on a form then, and giving
# up means asking for approval all over again: with 200 executions in flight against an Atlas
# taking 2 s per request, the reads queued for a connection longer than 8 s and 127 of 1,146
# approved requests stopped as PREVIEW_UNAVAILABLE. The execution's lease is renewed meanwhile.
REREAD_TIMEOUT_SECONDS = 30.0
# Slack drops a block_suggestion answer after 3 seconds; the policy check and the network need the rest.
OPTIONS_BUDGET_SECONDS = 2.0
# A form must open within Slack's 3 s of its command; a preview only fills an open one in. While
# forms are being opened, a preview waits for them up to this long (then runs anyway, so a steady
# stream of commands cannot starve it): a preview costs the work side about as much CPU as opening
# the form, and at 200 commands/s (bench) forms queued behind previews past 1 s.
PREVIEW_YIELDS_TO_FORMS_SECONDS = 1.0
# Slack reports of executions in progress at once: the "executing" line and message redraw, the
# result and redraw, the verification note. An execution's own work (re-reads, the Atlas call,
# saving the outcome) never waits for one, so under a burst of approvals the Atlas calls go first
# and the reports follow, instead of every report's Slack round trips and Block Kit serialisation
# sharing the event loop with the calls they report: in bench/ (py-spy) the reports were about two
# fifths of the work side's CPU per Approve click. Slack takes about one chat.postMessage per second per
# channel and chat.update is Tier 3, so a larger burst of reports would mostly meet 429s anyway.
REPORT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A confirmation modal ready to build, without its preview and once the preview is read.

    It holds no built view: a preview may wait a while for the forms ahead of it (see
    :meth:`ChatOps.fill_preview`), and in a burst hundreds wait at once."""

    spec: ActionSpec[Any]
    args: Any
    with_preview: Callable[..., View]

    @property
    def view(self) -> View:
        """The form as it opens, before its preview is read."""
        return self.with_preview()


@dataclass(slots=True)
class _SavedOutcome:
    """An execution's saved outcome, once known, for its "executing" report to look at (one loop)."""

    finished: ActionRequest | None = None


class ChatOps:
    def __init__(
        self,
        *,
        store: Store,
        policy: Policy,
        registry: Mapping[str, ActionSpec[Any]],
        atlas: AtlasClient,
        slack: AsyncWebClient,
        directory: Directory,
        sealer: Sealer,
        metrics: Metrics,
        replica_id: str,
        lease_seconds: float = 120.0,
        environ: Mapping[str, str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.policy = policy
        self.registry = dict(registry)
        self.atlas = atlas
        self.slack = slack
        self.directory = directory
        self.metrics = metrics
        self.catalog = TargetCatalog(TargetSource(atlas=atlas, profiles=tuple(policy.service_accounts)))
        self._reads = ReadCache()
        self._sealer = sealer
        self.intake = Intake(registry=registry, policy=policy, sealer=sealer)
        self._replica_id = replica_id
        self._lease_seconds = lease_seconds
        self._environ = environ
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        metrics.executions_in_flight.set_function(lambda: len(self._tasks))
        self._reports = asyncio.Semaphore(REPORT_CONCURRENCY)
        self._forms_opening = 0  # commands between their start and views.open's answer
        self._no_form_opening = asyncio.Event()
        self._no_form_opening.set()
        self._accepting = True

    # ------------------------------------------------------------------ commands

    def parse(self, text: str) -> Message | None:
        return self.intake.parse(text)

    async def command(self, cmd: CommandInput, *, form_opened: Callable[[], None] | None = None) -> Message | None:
        """After the ack: meta commands answer; actions check the policy and open the modal.
        ``form_opened`` is called once views.open has answered, before the preview is read."""
        parsed = parse_command(cmd.text, self.registry)  # already validated by parse()
        if parsed.name == "pick":
            with self._opening_a_form():
                return await self.open_picker(cmd)
        if parsed.name == "pending":
            return await self.pending(user_id=cmd.user_id, team_id=cmd.team_id, channel_id=cmd.channel_id)
        if parsed.name == "whoami":
            return await self.whoami(user_id=cmd.user_id, team_id=cmd.team_id)
        if parsed.spec is None:
            return help_message(self.registry)
        with self._opening_a_form():
            confirmation = await self._confirmation(
                parsed.spec,
                parsed.args,
                user_id=cmd.user_id,
                team_id=cmd.team_id,
                channel_id=cmd.channel_id,
                response_url=cmd.response_url,
            )
            if isinstance(confirmation, Message):
                return confirmation
            try:
                opened = await self.slack.views_open(trigger_id=cmd.trigger_id, view=view_dict(confirmation.view))
                # Only these two are needed from here on: the response (the whole view, sent and
                # echoed back) is not kept while the preview waits.
                view_id, view_hash = str(opened["view"]["id"]), str(opened["view"]["hash"])
                del opened
            except SlackApiError as exc:
                error = self._slack_failed("views.open", exc)
                return plain_message(
                    f"Could not open the confirmation form (`{error}`). Slack allows 3 seconds to open it; "
                    "please run the command again."
                )
        if form_opened is not None:
            form_opened()
        await self.fill_preview(confirmation, view_id=view_id, view_hash=view_hash)
        return None

    @contextlib.contextmanager
    def _opening_a_form(self) -> Iterator[None]:
        """Counts a form being opened, for previews to let it go first (see :meth:`fill_preview`)."""
        self._forms_opening += 1
        self._no_form_opening.clear()
        try:
            yield
        finally:
            self._forms_opening -= 1
            if not self._forms_opening:
                self._no_form_opening.set()

    async def _confirmation(
        self,
        spec: ActionSpec[Any],
        args: Any,
        *,
        user_id: str,
        team_id: str,
        channel_id: str,
        response_url: str | None,
    ) -> Confirmation | Message:
        """The confirmation modal for a request this person may make here, or why they may not."""
        actor = await self._actor(user_id, team_id)
        denial = await self._request_denial(spec, actor, channel_id)
        if denial is not None:
            await self.store.record_event(
                event="request_denied",
                actor_id=user_id,
                channel_id=channel_id,
                detail={"action": spec.name, "reason": denial.text},
            )
            self.metrics.requests.labels(spec.name, "denied").inc()
            return denial
        rule = self.policy.actions[spec.name]
        metadata = self._sealer.sign(
            json.dumps(
                {"a": spec.name, "t": spec.target_of(args), "c": channel_id, "u": user_id, "r": response_url},
                separators=(",", ":"),
            )
        )
        modal = functools.partial(
            confirm_modal,
            spec,
            args,
            private_metadata=metadata,
            approvals_required=rule.approvals,
            approver_roles=rule.approve,
            ttl_minutes=self.policy.approval_ttl_minutes,
        )
        return Confirmation(spec=spec, args=args, with_preview=modal)

    async def fill_preview(self, confirmation: Confirmation, *, view_id: str, view_hash: str | None) -> None:
        """The modal is open within the trigger_id window; the Atlas reads fill it in afterwards."""
        spec, args = confirmation.spec, confirmation.args
        if spec.preview is None:
            return
        if self._forms_opening:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._no_form_opening.wait(), PREVIEW_YIELDS_TO_FORMS_SECONDS)
        preview = await self.read_preview(spec, args, profile=getattr(args, "profile", None))
        view = view_dict(confirmation.with_preview(preview=preview))
        try:
            if view_hash is None:
                await self.slack.views_update(view_id=view_id, view=view)
            else:
                await self.slack.views_update(view_id=view_id, hash=view_hash, view=view)
        except SlackApiError as exc:
            # hash_conflict or not_found: the requester already submitted or closed the form.
            self._slack_failed("views.update", exc)

    # ------------------------------------------------------------------ the picker (/atlas alone)

    def _picker_metadata(self, cmd: CommandInput) -> str:
        context = {"k": "pick", "c": cmd.channel_id, "u": cmd.user_id, "r": cmd.response_url}
        return self._sealer.sign(json.dumps(context, separators=(",", ":")))

    def _picker_context(self, private_metadata: str, user_id: str) -> dict[str, Any] | None:
        """The picker's signed context (channel, requester), if it is genuine and this user's."""
        try:
            context = json.loads(self._sealer.verify(private_metadata))
        except (SealError, ValueError):
            return None
        if not isinstance(context, dict) or context.get("k") != "pick" or context.get("u") != user_id:
            return None
        return context

    async def open_picker(self, cmd: CommandInput) -> Message | None:
        view = picker_modal(self.registry, private_metadata=self._picker_metadata(cmd))
        try:
            await self.slack.views_open(trigger_id=cmd.trigger_id, view=view_dict(view))
        except SlackApiError as exc:
            error = self._slack_failed("views.open", exc)
            return plain_message(f"Could not open the form (`{error}`). Please run `/atlas` again.")
        return None

    async def picker_chose_action(
        self, *, user_id: str, private_metadata: str, action: str, view_id: str, view_hash: str
    ) -> None:
        """The action menu changed: show the target menu for that action."""
        spec = self.registry.get(action)
        if self._picker_context(private_metadata, user_id) is None or spec is None:
            return
        view = picker_modal(self.registry, private_metadata=private_metadata, chosen=spec)
        try:
            await self.slack.views_update(view_id=view_id, hash=view_hash, view=view_dict(view))
        except SlackApiError as exc:
            self._slack_failed("views.update", exc)

    async def picker_options(
        self, *, user_id: str, team_id: str, private_metadata: str, block_id: str, query: str
    ) -> dict[str, Any]:
        """Answer a block_suggestion: targets matching ``query``, only for someone who may request."""
        context = self._picker_context(private_metadata, user_id)
        spec = self.registry.get(block_id.removeprefix(PICK_TARGET_BLOCK_PREFIX))
        if context is None or spec is None or not block_id.startswith(PICK_TARGET_BLOCK_PREFIX):
            return {"options": []}
        actor = await self._actor(user_id, team_id)
        decision = decide_request(
            self.policy, actor, spec.name, str(context["c"]), app_team_id=await self.directory.team_id()
        )
        if not decision:
            # Atlas's inventory is shown only to people who may act on it.
            return {"options": []}
        started = time.perf_counter()
        found = await self.catalog.search(spec, query, budget_seconds=OPTIONS_BUDGET_SECONDS)
        self.metrics.options_seconds.observe(time.perf_counter() - started)
        return target_options(found.options)

    async def picker_submission(self, sub: SubmissionInput) -> Confirmation | dict[str, str]:
        """The picker's Next: the chosen target, validated like typed arguments, and the policy."""
        context = self._picker_context(sub.private_metadata, sub.user_id)
        if context is None:
            return {PICK_ACTION_BLOCK: "This form could not be verified. Close it and run /atlas again."}
        spec = self.registry.get(sub.values.get(PICK_ACTION_BLOCK) or "")
        if spec is None:
            return {PICK_ACTION_BLOCK: "Choose an action."}
        target_block = PICK_TARGET_BLOCK_PREFIX + spec.name
        chosen = sub.values.get(target_block)
        if not chosen:
            return {target_block: f"Pick the {spec.target_noun}."}
        try:
            args = spec.parse_words(chosen.split())
        except InvalidCommand as exc:
            return {target_block: exc.user_message}
        confirmation = await self._confirmation(
            spec,
            args,
            user_id=sub.user_id,
            team_id=sub.team_id,
            channel_id=str(context["c"]),
            response_url=context.get("r") if isinstance(context.get("r"), str) else None,
        )
        if isinstance(confirmation, Message):
            return {PICK_ACTION_BLOCK: truncate(confirmation.text.removeprefix(":no_entry: "), 300)}
        return confirmation

    async def read_preview(
        self, spec: ActionSpec[Any], args: Any, *, profile: str | None, timeout: float | None = None
    ) -> Preview | None:
        """The target as Atlas shows it now; a 404 is a pre-flight blocker, other failures say so.
        ``timeout`` defaults to PREVIEW_TIMEOUT_SECONDS."""
        if spec.preview is None:
            return None
        timeout = PREVIEW_TIMEOUT_SECONDS if timeout is None else timeout
        ctx = ExecutionContext(atlas=self.atlas, service_account=self._service_account(profile), cache=self._reads)
        try:
            async with asyncio.timeout(timeout):
                return await spec.preview(ctx, args)
        except AtlasNotFoundError as exc:
            return Preview(
                blockers=(
                    f"Atlas does not know this target (HTTP 404 {exc.error_code or ''}). Check the ids; "
                    "it may already be gone.",
                )
            )
        except AtlasError as exc:
            return preview_unavailable(f"{type(exc).__name__} {exc.status or ''} {exc.error_code or ''}".strip())
        except TimeoutError:
            return preview_unavailable(f"no answer within {timeout:.0f} s")

    async def _request_denial(self, spec: ActionSpec[Any], actor: Actor, channel_id: str) -> Message | None:
        decision = decide_request(self.policy, actor, spec.name, channel_id, app_team_id=await self.directory.team_id())
        if not decision:
            return plain_message(f":no_entry: {decision.reason}")
        limits = self.policy.rate_limits
        since = self._clock() - timedelta(hours=1)
        by_requester, in_channel = await self.store.count_recent_by(
            since=since, requester_id=actor.user_id, channel_id=channel_id
        )
        if by_requester >= limits.per_user_per_hour:
            return plain_message(
                f":no_entry: You have made {limits.per_user_per_hour} requests in the last hour, the limit. "
                "Ask another on-call engineer, or wait."
            )
        if in_channel >= limits.per_channel_per_hour:
            return plain_message(
                f":no_entry: This channel has had {limits.per_channel_per_hour} requests in the last hour, "
                "the limit. Wait, or use another incident channel."
            )
        return None

    # ------------------------------------------------------------------ submission

    def check_submission(self, sub: SubmissionInput) -> ValidSubmission | dict[str, str]:
        return self.intake.check_submission(sub)

    async def submit(self, sub: ValidSubmission) -> Message | None:
        """After the ack: re-check, store the request, post the approval message."""
        spec, args = sub.spec, sub.args
        actor = await self._actor(sub.user_id, sub.team_id)
        denial = await self._request_denial(spec, actor, sub.channel_id)
        if denial is not None:
            self.metrics.requests.labels(spec.name, "denied").inc()
            return denial
        rule = self.policy.actions[spec.name]
        preview = await self.read_preview(spec, args, profile=getattr(args, "profile", None))
        if preview is not None and preview.blockers:
            await self.store.record_event(
                event="preflight_blocked",
                actor_id=sub.user_id,
                channel_id=sub.channel_id,
                detail={"action": spec.name, "target": spec.target_of(args), "blockers": list(preview.blockers)},
            )
            self.metrics.requests.labels(spec.name, "blocked").inc()
            reasons = "\n".join(f"• {escape_mrkdwn(b)}" for b in preview.blockers)
            return plain_message(f":no_entry: Stopped before approval; nothing was stored or sent to Atlas.\n{reasons}")
        new = NewActionRequest(
            action=spec.name,
            target=spec.target_of(args),
            target_label=spec.label_of(args),
            requester_id=sub.user_id,
            requester_team_id=sub.team_id,
            channel_id=sub.channel_id,
            reason=sub.reason,
            approvals_required=rule.approvals,
            expires_at=self._clock() + timedelta(minutes=self.policy.approval_ttl_minutes),
            secret_fingerprint=fingerprint(sub.secret.get_secret_value()) if sub.secret else None,
            sealed_secret=self._sealer.seal(sub.secret) if sub.secret else None,
            profile=getattr(args, "profile", None),
            preview=preview,  # its evidence goes to the audit trail, in the request's transaction
            preview_digest=preview.digest if preview is not None else None,
        )
        request = await self.store.create_request(new)
        bind_request_id(request.id)
        log.info("%s requested on %s", request.action, request.target_label)
        self.metrics.requests.labels(spec.name, "requested").inc()
        message = approval_message(request, spec, approver_roles=rule.approve)
        try:
            posted = await self.slack.chat_postMessage(
                channel=request.channel_id, text=message.text, blocks=message.blocks_as_dicts()
            )
        except SlackApiError as exc:
            error = self._slack_failed("chat.postMessage", exc)
            return plain_message(
                f"Request `{request.short_id}` is recorded and waiting for approval, but I could not post "
                f"it in this channel (`{error}`). Invite me with `/invite` and approvers can find it with "
                "`/atlas pending`."
            )
        await self.store.set_message(request.id, channel=str(posted["channel"]), ts=str(posted["ts"]))
        return None

    # ------------------------------------------------------------------ decisions

    async def approve(self, click: ClickInput) -> Message | None:
        request, actor, denial = await self._check_decider(click, verb="approve")
        bind_request_id(request.id if request is not None else None)
        if denial is not None or request is None:
            return denial
        # The last approval claims the execution in its own transaction: one fewer transaction
        # between the click and the Atlas call. A draining replica leaves it approved instead.
        claim = ExecutionClaim(self._replica_id, self._lease_seconds) if self._accepting else None
        try:
            result = await self.store.approve(request.id, approver_id=actor.user_id, claim=claim)
        except StaleRequest as exc:
            return plain_message(f"Nothing was done: {exc.user_message}")
        if not result.counted:
            return plain_message("Your approval is already counted; another approver is needed.")
        request = result.request
        self.metrics.requests.labels(request.action, "approval").inc()
        approved = (
            f":ballot_box_with_check: <@{actor.user_id}> approved "
            f"({len(request.approvers)} of {request.approvals_required})."
        )
        if result.became_approved:
            self.metrics.requests.labels(request.action, "approved").inc()
            # The execution posts this line with its own "executing" one: no Slack round trip
            # stands between the last approval and the Atlas call.
            if not result.claimed:
                self.spawn(self.execute(request.id, approved_line=approved))
            elif self._accepting:
                self.spawn(self._run(result.request, approved_line=approved))
            else:
                # Draining began while the approval was saved: hand the request back now, not from
                # a task that shutdown could cancel before it starts (the lease would then lapse).
                await Lease(
                    self.store, request.id, executor_id=self._replica_id, lease_seconds=self._lease_seconds
                ).hand_back()
                await self.post_in_thread(result.request, approved)
        else:
            await self.post_in_thread(request, approved)
            await self.refresh_message(request)
        return None

    async def reject(self, click: ClickInput) -> Message | None:
        request = await self._get(click.request_id)
        if request is None:
            return plain_message("That request no longer exists.")
        bind_request_id(request.id)
        request = await self._with_approval_message(request, click)
        if click.user_id == request.requester_id:
            try:
                cancelled = await self.store.cancel(request.id, user_id=click.user_id)
            except StaleRequest as exc:
                return plain_message(f"Nothing was done: {exc.user_message}")
            self.metrics.requests.labels(request.action, "cancelled").inc()
            await self.post_in_thread(cancelled, f":heavy_multiplication_x: <@{click.user_id}> withdrew the request.")
            await self.refresh_message(cancelled)
            return None
        request, actor, denial = await self._check_decider(click, verb="reject", request=request)
        if denial is not None or request is None:
            return denial
        try:
            rejected = await self.store.reject(request.id, user_id=actor.user_id)
        except StaleRequest as exc:
            return plain_message(f"Nothing was done: {exc.user_message}")
        self.metrics.requests.labels(request.action, "rejected").inc()
        await self.post_in_thread(rejected, f":no_entry: <@{actor.user_id}> rejected the request. Nothing was run.")
        await self.refresh_message(rejected)
        return None

    async def _check_decider(
        self, click: ClickInput, *, verb: str, request: ActionRequest | None = None
    ) -> tuple[ActionRequest | None, Actor, Message | None]:
        actor = await self._actor(click.user_id, click.team_id)
        request = request or await self._get(click.request_id)
        if request is None:
            return None, actor, plain_message("That request no longer exists.")
        request = await self._with_approval_message(request, click)
        decision = decide_approve(
            self.policy,
            actor,
            action=request.action,
            requester_id=request.requester_id,
            request_channel_id=request.channel_id,
            click_channel_id=click.channel_id,
            app_team_id=await self.directory.team_id(),
        )
        if not decision:
            await self.store.record_event(
                event=f"{verb}_denied",
                actor_id=actor.user_id,
                request_id=request.id,
                channel_id=click.channel_id,
                detail={"reason": decision.reason},
            )
            return request, actor, plain_message(f":no_entry: {decision.reason}")
        return request, actor, None

    # ------------------------------------------------------------------ execution

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run work after the ack, tracked so shutdown can wait for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background work failed: %s", type(exc).__name__, exc_info=exc)

    async def drain(self, timeout: float) -> int:
        """Stop starting executions and wait up to ``timeout`` for running ones; returns how many were
        still running then. Those are cancelled: one that has not called Atlas yet hands its request
        back (approved again, for another replica); one waiting on Atlas is left to the stale-lease sweep."""
        self._accepting = False
        return await finish_or_cancel(self._tasks, timeout, grace=HAND_BACK_SECONDS + 1)

    async def execute(self, request_id: str, *, approved_line: str | None = None) -> None:
        """Run an approved request if this replica wins its claim. ``approved_line`` is the last
        approval's thread post, sent with the "executing" one (or alone if nothing runs here)."""
        bind_request_id(request_id)
        claimed: ActionRequest | None = None
        try:
            if not self._accepting:
                return  # shutting down: another replica's sweeper picks approved requests up
            claimed = await self.store.claim_execution(
                request_id, executor_id=self._replica_id, lease_seconds=self._lease_seconds
            )
        except StoreUnavailable:
            # Still approved (or, if the claim's COMMIT landed unseen, leased): a sweeper picks it up.
            log.warning("request %s not claimed: the database is unavailable", request_id[:8])
            return
        finally:
            if claimed is None and approved_line is not None:
                await self._post_approval_only(request_id, approved_line)
        if claimed is None:
            return  # someone else claimed it, or it expired: nothing to do, by design
        await self._run(claimed, approved_line)

    async def _run(self, claimed: ActionRequest, approved_line: str | None) -> None:
        """Execute a request this replica has just claimed (it is executing, leased to this replica)."""
        bind_request_id(claimed.id)
        spec = self.registry[claimed.action]
        log.info("executing %s on %s", claimed.action, claimed.target_label)
        # The lease is renewed while this runs; leaving the block before `sent` hands the request back.
        async with leased(
            self.store, claimed.id, executor_id=self._replica_id, lease_seconds=self._lease_seconds
        ) as lease:
            # Telling the channel runs beside the Atlas work instead of before it: two Slack round
            # trips are not worth delaying an emergency action for, and under a burst the report
            # waits its turn (REPORT_CONCURRENCY) while the calls go ahead. The result is posted
            # after it, so the thread still reads "executing" then the result (or, if the outcome
            # was saved before the report's turn came, one post saying both).
            saved = _SavedOutcome()
            announced = asyncio.get_running_loop().create_task(self._announce_execution(claimed, approved_line, saved))
            try:
                outcome = await self._target_changed(spec, claimed)
                if outcome is None:
                    lease.sent = True
                    outcome = await self._call_atlas(spec, claimed)
                # Saved as soon as it is known, not after the report: a replica that dies while its
                # reports wait leaves an outcome, not a lease for the sweeper to call unknown.
                finished = saved.finished = await lease.finish(state=state_for(outcome), outcome=outcome)
            except BaseException:
                announced.cancel()  # cancelled at the drain deadline, or failing: do not wait on Slack
                raise
        result_told = await announced
        if finished is None:
            log.warning("request %s was resolved by another replica before this one finished", claimed.short_id)
            return
        self.metrics.requests.labels(claimed.action, finished.state.value).inc()
        outcome_code = "" if outcome.ok else f" ({outcome.error_code or outcome.status or 'no code'})"
        log.info("%s finished: %s%s", claimed.action, finished.state.value, outcome_code)
        if not result_told:
            async with self._reports:
                await self._tell_result(finished)
        if finished.state in (RequestState.SUCCEEDED, RequestState.UNKNOWN) and spec.verify is not None:
            # After an unknown outcome the read is what tells people whether it happened. It is an
            # Atlas read, so it holds no report slot while it waits on a slow Atlas.
            note = await self._verification(spec, finished)
            if note:
                async with self._reports:
                    await self.post_in_thread(finished, note)

    async def _announce_execution(
        self, request: ActionRequest, approved_line: str | None, saved: _SavedOutcome
    ) -> bool:
        """Tell the channel the request is executing; True if the outcome was in first and told instead."""
        async with self._reports:
            if (finished := saved.finished) is not None:
                # The outcome was saved while this report waited its turn (a burst of approvals):
                # "executing" is already past, and the result's post and redraw would follow it at
                # once. One post and one redraw say both: two Slack calls and their Block Kit
                # serialisation fewer per execution in a burst, when the work side is busiest and
                # chat.postMessage (about one a second per channel) most likely to meet a 429.
                await self._tell_result(finished, after=approved_line)
                return True
            # Beside the last approval's own line, "Approved" would only repeat it.
            if approved_line:
                text = f"{approved_line}\n:gear: Executing in Atlas now."
            else:  # picked up by a sweeper: the approval was posted earlier
                text = ":gear: Approved. Executing in Atlas now."
            await self.post_in_thread(request, text)
            # Only this replica moves an executing request on, and it posts the result after this.
            await self.refresh_message(request, reread=False)
        return False

    async def _tell_result(self, finished: ActionRequest, *, after: str | None = None) -> None:
        """The result in the thread (below ``after``, a line it also carries) and the final redraw."""
        text = self.result_text(finished)
        await self.post_in_thread(finished, f"{after}\n{text}" if after else text)
        await self.refresh_message(finished, reread=False)  # a finished request changes no more

    async def _post_approval_only(self, request_id: str, approved_line: str) -> None:
        try:
            request = await self._get(request_id)
        except StoreUnavailable:
            return
        if request is not None:
            await self.post_in_thread(request, approved_line)

    async def _target_changed(self, spec: ActionSpec[Any], request: ActionRequest) -> Outcome | None:
        """Read the preview again; stop unless the target is still what the approvers saw."""
        if spec.preview is None or request.preview_digest is None:
            return None
        fresh = await self.read_preview(
            spec, spec.validate(request.target), profile=request.profile, timeout=REREAD_TIMEOUT_SECONDS
        )
        if fresh is None or fresh.digest == request.preview_digest:
            return None
        if not fresh.available:
            # Say why (the error class, HTTP status and Atlas errorCode read_preview noted).
            why = fresh.warnings[0].removeprefix("Atlas could not be read for a preview: ") if fresh.warnings else ""
            summary = (
                "Could not read the target from Atlas again just before executing"
                + (f" ({why})" if why else "")
                + ", so nothing was run. It is safe to request the action again."
            )
            return Outcome(ok=False, error_code="PREVIEW_UNAVAILABLE", retry_safe=True, summary=summary, detail=summary)
        changes = fresh.changes_from(request.preview) if request.preview else []
        summary = (
            "The target changed since it was approved"
            + (f" ({'; '.join(changes)})" if changes else "")
            + ". Nothing was run. Request it again so approvers see the current state."
        )
        return Outcome(ok=False, error_code="TARGET_CHANGED", retry_safe=True, summary=summary, detail=summary)

    async def _verification(self, spec: ActionSpec[Any], request: ActionRequest) -> str:
        assert spec.verify is not None
        try:
            async with asyncio.timeout(PREVIEW_TIMEOUT_SECONDS):
                done = await spec.verify(self.atlas, spec.validate(request.target))
        except (AtlasError, TimeoutError) as exc:
            return f":grey_question: Could not read the target back from Atlas to confirm ({type(exc).__name__})."
        if done is None:
            return ""
        if done:
            return f":white_check_mark: Verified: Atlas now shows that {spec.verified_state}."
        if request.state is RequestState.UNKNOWN:
            return f":warning: Read back from Atlas: it does not show that {spec.verified_state}. Check Atlas."
        return f":warning: Atlas accepted the call but does not yet show that {spec.verified_state}. Check Atlas."

    async def _call_atlas(self, spec: ActionSpec[Any], request: ActionRequest) -> Outcome:
        started = time.perf_counter()
        status = "error"
        try:
            ctx = self._execution_context(spec, request)
            await spec.execute(ctx, spec.validate(request.target))
            status = "ok"
            return success_outcome()
        except AtlasError as exc:
            status = str(exc.status or type(exc).__name__)
            return outcome_from_error(exc)
        except _ExecutionSetupError as exc:
            return Outcome(ok=False, retry_safe=False, summary=str(exc), detail=str(exc))
        finally:
            self.metrics.atlas_seconds.labels(spec.name, status).observe(time.perf_counter() - started)

    def _execution_context(self, spec: ActionSpec[Any], request: ActionRequest) -> ExecutionContext:
        if spec.secret_input is None:
            return ExecutionContext(atlas=self.atlas)
        if request.sealed_secret is None:
            raise _ExecutionSetupError("The sealed token is gone; request the revocation again.")
        try:
            secret = self._sealer.unseal(request.sealed_secret)
        except SealError:
            raise _ExecutionSetupError(
                "The token could not be unsealed: ATLAS_CHATOPS_SECRET_KEY differs between replicas."
            ) from None
        service_account = self._service_account(request.profile)
        if service_account is None:
            raise _ExecutionSetupError(
                f"Service account profile `{request.profile}` has no credentials in the environment "
                "(see service_accounts in the policy file). Nothing was sent to Atlas."
            )
        return ExecutionContext(atlas=self.atlas, secret=secret, service_account=service_account)

    def _service_account(self, profile_name: str | None) -> tuple[str, SecretStr] | None:
        """The profile's (client id, secret) from the environment variables the policy names."""
        profile = self.policy.service_accounts.get(profile_name or "")
        if profile is None:
            return None
        client_id = self._environ.get(profile.client_id_env)
        client_secret = self._environ.get(profile.client_secret_env)
        if not client_id or not client_secret:
            return None
        return client_id, SecretStr(client_secret)

    @staticmethod
    def result_text(request: ActionRequest) -> str:
        outcome = request.outcome
        if outcome is None or outcome.ok:
            return ":white_check_mark: Done. Atlas accepted the request."
        icon = ":grey_question:" if request.state is RequestState.UNKNOWN else ":x:"
        return f"{icon} *{request.state.value.capitalize()}.* {escape_mrkdwn(outcome.summary)}"

    # ------------------------------------------------------------------ read-only answers

    async def waiting_for(self, *, user_id: str, team_id: str, channel_id: str | None) -> list[ActionRequest]:
        """Pending requests this person may approve now (in one channel, or anywhere for App Home)."""
        actor = await self._actor(user_id, team_id)
        app_team = await self.directory.team_id()
        now = self._clock()
        requests = await self.store.list_requests(states=[RequestState.PENDING], channel_id=channel_id, limit=200)
        return [
            r
            for r in requests
            if r.expires_at > now
            and user_id not in r.approvers
            and decide_approve(
                self.policy,
                actor,
                action=r.action,
                requester_id=r.requester_id,
                request_channel_id=r.channel_id,
                click_channel_id=channel_id,
                app_team_id=app_team,
            )
        ]

    async def pending(self, *, user_id: str, team_id: str, channel_id: str) -> Message:
        requests = await self.waiting_for(user_id=user_id, team_id=team_id, channel_id=channel_id)
        return pending_message(requests, self.registry)

    async def publish_home(self, *, user_id: str, team_id: str, notice: str | None = None) -> None:
        """The App Home tab: the requests waiting for this person's approval, with the buttons."""
        requests = await self.waiting_for(user_id=user_id, team_id=team_id, channel_id=None)
        try:
            view = view_dict(home_view(requests, self.registry, notice=notice))
            await self.slack.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            self._slack_failed("views.publish", exc)

    async def whoami(self, *, user_id: str, team_id: str) -> Message:
        actor = await self._actor(user_id, team_id)
        roles = roles_of(self.policy, actor)
        may_request = [n for n, r in self.policy.actions.items() if set(r.request) & set(roles)]
        may_approve = [n for n, r in self.policy.actions.items() if set(r.approve) & set(roles)]
        own_team = team_id == await self.directory.team_id()
        lines = [
            f"You are <@{user_id}>" + ("" if own_team else " from another organisation (Slack Connect)") + ".",
            f"Roles: {', '.join(roles) or 'none'}",
            f"User groups: {', '.join('@' + g for g in sorted(actor.group_handles)) or 'none'}",
            f"May request: {', '.join(may_request) if own_team and may_request else 'nothing'}",
            f"May approve: {', '.join(may_approve) if own_team and may_approve else 'nothing'}",
        ]
        return plain_message("\n".join(lines))

    # ------------------------------------------------------------------ helpers

    async def _actor(self, user_id: str, team_id: str) -> Actor:
        return Actor(user_id=user_id, team_id=team_id, group_handles=await self.directory.groups_of(user_id))

    async def _with_approval_message(self, request: ActionRequest, click: ClickInput) -> ActionRequest:
        """``request`` knowing its approval message, when the click came from that message before
        the bot stored it: without it the decision and the result would land in the channel instead
        of the thread, and the message would keep its buttons."""
        clicked = click.approval_message
        if request.message_ts is not None or clicked is None or clicked.channel != request.channel_id:
            return request
        await self.store.set_message(request.id, channel=clicked.channel, ts=clicked.ts, only_if_unset=True)
        return await self._get(request.id) or request

    async def _get(self, request_id: str) -> ActionRequest | None:
        try:
            return await self.store.get(request_id)
        except RequestNotFound:
            return None

    async def post_in_thread(self, request: ActionRequest, text: str) -> None:
        message = plain_message(text)
        channel = request.message_channel or request.channel_id
        try:
            await self.slack.chat_postMessage(
                channel=channel, thread_ts=request.message_ts, text=message.text, blocks=message.blocks_as_dicts()
            )
        except (SlackApiError, SlackClientError) as exc:
            self._slack_failed("chat.postMessage", exc)

    async def refresh_message(self, request: ActionRequest, *, reread: bool = True) -> None:
        """Redraw the approval message; ``reread=False`` when ``request`` is known to be current."""
        if request.message_ts is None or request.message_channel is None:
            return
        fresh = request
        if reread:
            # Best effort, like the post itself: without the database, show the state the caller knows.
            with contextlib.suppress(StoreUnavailable):
                fresh = await self._get(request.id) or request
        spec = self.registry[fresh.action]
        rule = self.policy.actions.get(fresh.action)
        message = approval_message(fresh, spec, approver_roles=rule.approve if rule else ())
        try:
            await self.slack.chat_update(
                channel=request.message_channel,
                ts=request.message_ts,
                text=message.text,
                blocks=message.blocks_as_dicts(),
            )
        except (SlackApiError, SlackClientError) as exc:
            self._slack_failed("chat.update", exc)

    def _slack_failed(self, method: str, exc: SlackApiError | SlackClientError) -> str:
        error = str(exc.response.get("error", "unknown")) if isinstance(exc, SlackApiError) else type(exc).__name__
        self.metrics.slack_errors.labels(method, error).inc()
        log.warning("Slack %s failed: %s", method, error)
        return error


class _ExecutionSetupError(ChatOpsError):
    """The bot could not even build the Atlas call (nothing was sent)."""
