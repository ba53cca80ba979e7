"""Webhook routes a workflow file exports: each is served at ``POST /api/webhooks/{slug}`` and
starts a run whose input is the webhook envelope (``inp["webhook"]``)::

    WEBHOOKS = [
        WebhookSpec(
            slug="github-issue-triage",
            provider="github",
            auth=HmacAuth.github(secret_ref="GITHUB_WEBHOOK_SECRET"),
            trigger_key=HeaderTriggerKey("X-GitHub-Delivery"),
            allowed_methods=["POST"],
            allowed_content_types=["application/json", "application/x-www-form-urlencoded"],
        )
    ]

A malformed declaration raises :class:`InvalidWebhook` when the file loads, with a message that
says what to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

__all__ = ["HeaderTriggerKey", "HmacAuth", "InvalidWebhook", "WebhookSpec"]

_SLUG = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SECRET_KEY = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[-._a-zA-Z0-9]+\Z")
_SCHEMES = ("github", "hmac", "standard-webhooks")
_REPLAY_PROTECTIONS = ("body_hash", "trigger_key")


class InvalidWebhook(ValueError):
    """A webhook declaration is malformed; the file fails to load with reason
    ``InvalidWebhook``."""


def _string(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidWebhook(f"{what} must be a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class HmacAuth:
    """How deliveries are signed: an HMAC-SHA256 of the body, hex-encoded in ``header`` after
    ``prefix``. ``HmacAuth.github(...)`` and ``HmacAuth.standard_webhooks(...)`` are those
    providers' schemes.

    ``secret_ref`` names the signing secret: an environment variable of the manager
    (``"GITHUB_WEBHOOK_SECRET"``) or a key of a Secret (``"github-webhook/secret"``).
    """

    secret_ref: str
    header: str = "X-Signature"
    prefix: str = ""
    scheme: str = "hmac"

    def __post_init__(self) -> None:
        for name in ("secret_ref", "header", "prefix", "scheme"):
            _string(f"HmacAuth: {name}", getattr(self, name))
        if self.scheme not in _SCHEMES:
            raise InvalidWebhook(f'HmacAuth: unknown scheme "{self.scheme}"; want github, hmac or standard-webhooks')
        ref = self.secret_ref
        if ref and not _ENV_VAR.match(ref) and not _SECRET_KEY.match(ref):
            raise InvalidWebhook(
                f'HmacAuth: secret_ref "{ref}" is neither an environment variable name '
                f"(GITHUB_WEBHOOK_SECRET) nor a Secret key (secret-name/key)"
            )

    @classmethod
    def github(cls, secret_ref: str) -> HmacAuth:
        """GitHub's signature: ``X-Hub-Signature-256: sha256=<hex>``."""
        return cls(secret_ref=secret_ref, header="", scheme="github")

    @classmethod
    def standard_webhooks(cls, secret_ref: str) -> HmacAuth:
        """The Standard Webhooks scheme (``webhook-id``, ``webhook-timestamp``,
        ``webhook-signature``; https://www.standardwebhooks.com)."""
        return cls(secret_ref=secret_ref, header="", scheme="standard-webhooks")


@dataclass(frozen=True)
class HeaderTriggerKey:
    """The request header that identifies a delivery (``HeaderTriggerKey("X-GitHub-Delivery")``):
    a redelivery with the same value maps to the run the first one started."""

    header: str

    def __post_init__(self) -> None:
        if not _string("HeaderTriggerKey: header", self.header):
            raise InvalidWebhook("HeaderTriggerKey: the header name is empty")


Auth = Union[HmacAuth, str, None]


@dataclass(frozen=True)
class WebhookSpec:
    """One webhook route that starts the workflow.

    - ``slug``: the route's last path segment: lower-case letters, digits and dashes.
    - ``provider``: a label copied into ``inp["webhook"]["provider"]`` (``"github"``).
    - ``auth``: ``HmacAuth(...)``, ``HmacAuth.github(...)``, ``HmacAuth.standard_webhooks(...)``
      or ``"none"`` (no verification: local development and trusted internal routes only).
      When unset, ``provider`` must name a scheme (``"github"``, ``"hmac"``,
      ``"standard-webhooks"`` or ``"none"``).
    - ``trigger_key``: ``HeaderTriggerKey("X-...")``: what identifies a delivery; by default
      the body's SHA-256.
    - ``allowed_methods``: accepted HTTP methods (default ``["POST"]``).
    - ``allowed_content_types``: accepted media types (default JSON and form-encoded).
    - ``replay_protection``: ``"body_hash"`` or ``"trigger_key"``: which of the two decides that
      a delivery was seen before.
    - ``webhook_only``: the workflow starts only from webhook deliveries; a run made any other
      way (the REST API, kubectl, a parent workflow, a schedule) fails with reason
      ``NotStartedByWebhook``, so nobody can hand the handler a forged envelope.
    """

    slug: str
    provider: str = ""
    auth: Auth = None
    trigger_key: Union[HeaderTriggerKey, str, None] = None
    allowed_methods: Optional[Sequence[str]] = None
    allowed_content_types: Optional[Sequence[str]] = None
    replay_protection: Optional[str] = None
    webhook_only: bool = False

    def __post_init__(self) -> None:
        slug = _string("WebhookSpec: slug", self.slug)
        if not _SLUG.match(slug) or len(slug) > 63:
            raise InvalidWebhook(f'webhook slug "{slug}": want lower-case letters, digits and dashes, at most 63 characters')
        what = f'WebhookSpec(slug="{slug}")'
        _string(f"{what}: provider", self.provider)
        self._check_auth(what)
        if self.trigger_key is not None and not isinstance(self.trigger_key, HeaderTriggerKey):
            if not isinstance(self.trigger_key, str) or not self.trigger_key:
                raise InvalidWebhook(f'{what}: trigger_key must be HeaderTriggerKey("X-..."), got {self.trigger_key!r}')
        for name in ("allowed_methods", "allowed_content_types"):
            object.__setattr__(self, name, _string_tuple(f"{what}: {name}", getattr(self, name)))
        protection = self.replay_protection
        if protection is not None and protection not in _REPLAY_PROTECTIONS:
            raise InvalidWebhook(f'{what}: replay_protection {protection!r}: want "body_hash" or "trigger_key"')
        if not isinstance(self.webhook_only, bool):
            raise InvalidWebhook(f"{what}: webhook_only must be True or False, got {self.webhook_only!r}")

    def _check_auth(self, what: str) -> None:
        auth = self.auth
        if isinstance(auth, HmacAuth):
            return
        if isinstance(auth, str):
            if auth != "none":
                raise InvalidWebhook(f'{what}: auth="{auth}"; the only string auth is "none", otherwise use HmacAuth')
            return
        if auth is not None:
            raise InvalidWebhook(f'{what}: auth must be HmacAuth(...), HmacAuth.github(...) or "none", got {type(auth).__name__}')
        if self.provider not in _SCHEMES + ("none",):
            raise InvalidWebhook(
                f'{what}: no auth: use auth=HmacAuth.github(secret_ref=...), '
                f'HmacAuth(secret_ref=..., header=...) or auth="none"'
            )


def _string_tuple(what: str, value: Optional[Sequence[str]]) -> Optional[Tuple[str, ...]]:
    """A list of strings as a tuple (the declaration is immutable); None stays None."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise InvalidWebhook(f'{what} must be a list of strings such as ["POST"]')
    return tuple(value)
