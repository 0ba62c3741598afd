"""The declarative shape of an Atlas action, and parsing ``/atlas`` command text into one.

A module under ``commands/`` defines one :class:`ActionSpec`: its name, positional
arguments with the spec's patterns, the argument model, the impact text, which argument
the requester must type to confirm, and the one Atlas call it makes. The framework knows
nothing else about any specific action.

Parsing is pure and never echoes anything that looks like a credential: a user who pastes
a token into the command line gets told to use the modal, and the text is not repeated.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel, SecretStr, ValidationError

from bot.errors import InvalidCommand
from bot.preview import Preview

if TYPE_CHECKING:
    from bot.atlas import AtlasClient

__all__ = [
    "META_COMMANDS",
    "ActionSpec",
    "Argument",
    "ExecutionContext",
    "ParsedCommand",
    "ReadCache",
    "SecretInput",
    "TargetOption",
    "TargetSource",
    "looks_like_secret",
    "parse_command",
]

ArgsT = TypeVar("ArgsT", bound=BaseModel)
T = TypeVar("T")

META_COMMANDS: dict[str, str] = {
    "help": "show this help",
    "pending": "list the requests in this channel waiting for your approval",
    "whoami": "show your roles and what you may request or approve",
}

# Shapes of credentials people paste by mistake: JWTs (Atlas access tokens), Slack tokens,
# service account secrets, API private keys (UUIDs), and long runs of base64 or hex.
_SECRET_SHAPES = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}"),
    re.compile(r"xox[abposr]-", re.IGNORECASE),
    re.compile(r"xapp-", re.IGNORECASE),
    re.compile(r"mdb_sa_sk_", re.IGNORECASE),
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE),
)
# Cluster names may be 64 characters of letters, digits and hyphens; a base64 or hex secret of
# that length has no hyphen and mixes letters with digits.
_LONG_OPAQUE = re.compile(r"(?=[^\s-]*\d)(?=[^\s-]*[A-Za-z])[A-Za-z0-9+/_=.]{41,}")


def looks_like_secret(text: str) -> bool:
    return any(p.search(text) for p in _SECRET_SHAPES) or _LONG_OPAQUE.search(text) is not None


@dataclass(frozen=True, kw_only=True, slots=True)
class Argument:
    """A positional argument: ``field`` in the args model, ``label`` as users and Atlas name it."""

    field: str
    label: str
    pattern: str
    optional: bool = False

    @property
    def placeholder(self) -> str:
        return f"[{self.label}]" if self.optional else f"<{self.label}>"


@dataclass(frozen=True, kw_only=True, slots=True)
class SecretInput:
    """A value only ever typed into the modal (revoke-token's token)."""

    label: str
    hint: str


class ReadCache:
    """Atlas reads that only label things and change rarely (organisation names), kept in this
    process for ``ttl_seconds`` so a preview, and its re-read just before execution, do not list
    every organisation each time. Never used for the target itself.
    """

    def __init__(self, *, ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}
        self._loading: dict[str, asyncio.Task[Any]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[T]], *, usable: Callable[[T], bool]) -> T:
        """The cached value if younger than the TTL and ``usable``, else a fresh ``load()``.

        Callers that miss while a load of ``key`` is under way wait for that one: under load, many
        previews start in the same second, and each would otherwise list every organisation.
        """
        hit = self._entries.get(key)
        if hit is not None and self._clock() - hit[0] < self._ttl and usable(hit[1]):
            return cast(T, hit[1])
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load(key, load))
            self._loading[key] = loading
            # If every caller has been cancelled by the time it fails, nobody else reads its error.
            loading.add_done_callback(lambda task: task.cancelled() or task.exception())
        # Shielded: one caller giving up (its own timeout) does not cancel the others' load.
        return cast(T, await asyncio.shield(loading))

    async def _load(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await load()
            self._entries[key] = (self._clock(), value)
            return value
        finally:
            del self._loading[key]


@dataclass(frozen=True, kw_only=True, slots=True)
class ExecutionContext:
    """What an action's ``execute`` and ``preview`` get: the Atlas client, for revoke-token the
    unsealed token and the service account credentials of the chosen profile, and for previews
    the process's :class:`ReadCache`."""

    atlas: AtlasClient
    secret: SecretStr | None = None
    service_account: tuple[str, SecretStr] | None = None
    cache: ReadCache | None = None


@dataclass(frozen=True, slots=True)
class TargetOption:
    """One entry of the picker's target menu: what people read, and the command words it stands
    for (parsed and validated exactly like typed arguments when the picker is submitted)."""

    label: str
    words: tuple[str, ...]

    @property
    def value(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetSource:
    """What an action's ``targets`` lister may read: Atlas, and the configured profile names."""

    atlas: AtlasClient
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ActionSpec(Generic[ArgsT]):
    name: str
    title: str
    arguments: tuple[Argument, ...]
    args_model: type[ArgsT]
    # Plain-words description of what will happen, from validated arguments (safe in mrkdwn).
    describe: Callable[[ArgsT], str]
    impact: str
    confirm_field: str
    execute: Callable[[ExecutionContext, ArgsT], Awaitable[None]]
    atlas_role: str
    secret_input: SecretInput | None = None
    # Label of the target shown in lists ("IdP 65f… in federation 65a…").
    target_label: Callable[[ArgsT], str] | None = None
    # Reads the target from Atlas for the confirmation modal and the approval message.
    preview: Callable[[ExecutionContext, ArgsT], Awaitable[Preview]] | None = None
    # After execution: does Atlas now show the intended end state? None when no read can tell.
    verify: Callable[[AtlasClient, ArgsT], Awaitable[bool | None]] | None = None
    # What ``verify`` confirms, in words ("the identity provider is gone").
    verified_state: str = ""
    # Lists every target the picker (``/atlas`` with no arguments) offers for this action.
    targets: Callable[[TargetSource], Awaitable[list[TargetOption]]] | None = None
    # Names the target in the picker ("identity provider", "cluster").
    target_noun: str = "target"

    @property
    def usage(self) -> str:
        return " ".join(["/atlas", self.name, *(a.placeholder for a in self.arguments)])

    def parse_words(self, words: Sequence[str]) -> ArgsT:
        required = [a for a in self.arguments if not a.optional]
        if len(words) < len(required):
            missing = required[len(words)]
            raise InvalidCommand(
                f"Missing argument `{missing.label}` (expected pattern `{missing.pattern}`).",
                field=missing.label,
                usage=self.usage,
            )
        if len(words) > len(self.arguments):
            raise InvalidCommand(f"Too many arguments: `{self.name}` takes {len(self.arguments)}.", usage=self.usage)
        return self.validate({a.field: w for a, w in zip(self.arguments, words, strict=False)})

    def validate(self, values: Mapping[str, Any]) -> ArgsT:
        try:
            return self.args_model.model_validate(dict(values))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else ""
            arg = next((a for a in self.arguments if a.field == field), None)
            label = arg.label if arg else field or "arguments"
            if arg is not None and err["type"] == "string_pattern_mismatch":
                shown = str(err["input"])
                shown = shown if len(shown) <= 40 else shown[:40] + "…"
                # Quoted back inertly: escaped for mrkdwn, and no backtick to close the code span.
                shown = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "ˋ")
                problem = f"`{shown}` does not match the expected pattern `{arg.pattern}`"
            else:
                problem = str(err["msg"])
            raise InvalidCommand(f"Invalid `{label}`: {problem}.", field=label, usage=self.usage) from None

    def confirm_identifier(self, args: ArgsT) -> str:
        return str(getattr(args, self.confirm_field))

    def target_of(self, args: ArgsT) -> dict[str, str]:
        return {k: str(v) for k, v in args.model_dump().items()}

    def label_of(self, args: ArgsT) -> str:
        if self.target_label is not None:
            return self.target_label(args)
        return " / ".join(self.target_of(args).values())


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """``/atlas`` text, understood. ``spec`` and ``args`` are set for actions, not meta commands."""

    name: str
    spec: ActionSpec[Any] | None = None
    args: BaseModel | None = None


def parse_command(text: str, registry: Mapping[str, ActionSpec[Any]]) -> ParsedCommand:
    if looks_like_secret(text):
        # Do not repeat any of the text: the user may have pasted a live credential.
        raise InvalidCommand(
            "That command looks like it contains a token or secret, so it was discarded and not "
            "stored. Never paste tokens into commands: run `/atlas revoke-token [profile]` and type "
            "the token into the form that opens. If it was a real secret, treat it as exposed.",
            usage="/atlas revoke-token [profile]",
        )
    words = text.split()
    if not words:
        # ``/atlas`` alone opens the picker: choose the action and its target from Atlas.
        return ParsedCommand("pick")
    name, rest = words[0].lower(), words[1:]
    if name in META_COMMANDS:
        return ParsedCommand(name)
    spec = registry.get(name)
    if spec is None:
        known = ", ".join([*registry, *META_COMMANDS])
        shown = name if re.fullmatch(r"[a-z0-9-]{1,40}", name) else "(that)"
        raise InvalidCommand(f"Unknown subcommand `{shown}`. Try one of: {known}.", usage="/atlas help")
    return ParsedCommand(name, spec, spec.parse_words(rest))
