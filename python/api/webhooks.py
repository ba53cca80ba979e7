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
from datetime import timedelta
from typing import Optional, Sequence, Tuple, Union

__all__ = ["BodyTriggerKey", "HeaderTriggerKey", "HmacAuth", "InvalidWebhook", "TokenAuth", "WebhookSpec"]

_SLUG = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SECRET_KEY = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[-._a-zA-Z0-9]+\Z")
_SCHEMES = ("github", "hmac", "standard-webhooks")
_REPLAY_PROTECTIONS = ("body_hash", "trigger_key")
_ALGORITHMS = ("", "sha256", "sha1", "sha512")
_ENCODINGS = ("", "hex", "base64")


class InvalidWebhook(ValueError):
    """A webhook declaration is malformed; the file fails to load with reason
    ``InvalidWebhook``."""


def _string(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidWebhook(f"{what} must be a string, got {type(value).__name__}")
    return value


def _check_secret_ref(what: str, ref: str) -> None:
    if ref and not _ENV_VAR.match(ref) and not _SECRET_KEY.match(ref):
        raise InvalidWebhook(
            f'{what}: secret_ref "{ref}" is neither an environment variable name '
            f"(GITHUB_WEBHOOK_SECRET) nor a Secret key (secret-name/key)"
        )


@dataclass(frozen=True)
class HmacAuth:
    """How deliveries are signed: an HMAC of the body (or of ``signed_template`` over
    ``{body}``, ``{timestamp}`` and ``{id}``) in ``header`` after ``prefix``. The defaults are a
    hex HMAC-SHA256 of the raw body in ``X-Signature``.

    - ``algorithm``: ``"sha256"`` (default), ``"sha1"`` or ``"sha512"``.
    - ``encoding``: ``"hex"`` (default) or ``"base64"``.
    - ``signed_template``: what the sender signs, e.g. ``"v0:{timestamp}:{body}"``.
    - ``timestamp_header``: the header of the unix seconds ``{timestamp}`` stands for; a
      timestamp further than ``timestamp_tolerance`` (seconds or a ``timedelta``; default five
      minutes) from now is refused, so a captured delivery cannot be replayed later.
    - ``signature_key``: ``header`` is a comma-separated ``key=value`` list whose entries of this
      key are signatures (Stripe's ``"v1"``); ``timestamp_key`` is its timestamp entry (``"t"``).
    - ``id_header``: the header of the delivery id ``{id}`` stands for.
    - ``timestamp_field``: the JSON body's field holding the time it was sent, unix seconds or
      milliseconds (Linear's ``"webhookTimestamp"``), refused outside ``timestamp_tolerance``.

    Presets: ``HmacAuth.github``, ``.standard_webhooks``, ``.stripe``, ``.slack``, ``.shopify``,
    ``.linear`` and ``.intercom``, each taking ``secret_ref``. ``secret_ref`` names the signing
    secret: an environment variable of the manager (``"GITHUB_WEBHOOK_SECRET"``) or a key of a
    Secret (``"github-webhook/secret"``).
    """

    secret_ref: str
    header: str = "X-Signature"
    prefix: str = ""
    scheme: str = "hmac"
    algorithm: str = ""
    encoding: str = ""
    signed_template: str = ""
    timestamp_header: str = ""
    timestamp_key: str = ""
    signature_key: str = ""
    id_header: str = ""
    timestamp_field: str = ""
    timestamp_tolerance: Union[float, timedelta, None] = None

    def __post_init__(self) -> None:
        for name in ("secret_ref", "header", "prefix", "scheme", "algorithm", "encoding", "signed_template",
                     "timestamp_header", "timestamp_key", "signature_key", "id_header", "timestamp_field"):
            _string(f"HmacAuth: {name}", getattr(self, name))
        if self.scheme not in _SCHEMES:
            raise InvalidWebhook(f'HmacAuth: unknown scheme "{self.scheme}"; want github, hmac or standard-webhooks')
        if self.algorithm.lower() not in _ALGORITHMS:
            raise InvalidWebhook(f'HmacAuth: algorithm "{self.algorithm}"; want sha256, sha1 or sha512')
        if self.encoding.lower() not in _ENCODINGS:
            raise InvalidWebhook(f'HmacAuth: encoding "{self.encoding}"; want hex or base64')
        tolerance = self.timestamp_tolerance
        if isinstance(tolerance, timedelta):
            tolerance = tolerance.total_seconds()
        if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0):
            raise InvalidWebhook(f"HmacAuth: timestamp_tolerance must be seconds (not negative) or a timedelta, got {self.timestamp_tolerance!r}")
        object.__setattr__(self, "timestamp_tolerance", None if tolerance is None else float(tolerance))
        _check_secret_ref("HmacAuth", self.secret_ref)

    @classmethod
    def github(cls, secret_ref: str) -> HmacAuth:
        """GitHub's signature: ``X-Hub-Signature-256: sha256=<hex>``."""
        return cls(secret_ref=secret_ref, header="", scheme="github")

    @classmethod
    def standard_webhooks(cls, secret_ref: str) -> HmacAuth:
        """The Standard Webhooks scheme (``webhook-id``, ``webhook-timestamp``,
        ``webhook-signature``; https://www.standardwebhooks.com)."""
        return cls(secret_ref=secret_ref, header="", scheme="standard-webhooks")

    @classmethod
    def stripe(cls, secret_ref: str) -> HmacAuth:
        """Stripe's ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`` over ``"{timestamp}.{body}"``,
        five minutes' tolerance."""
        return cls(secret_ref=secret_ref, header="Stripe-Signature", signature_key="v1", timestamp_key="t",
                   signed_template="{timestamp}.{body}", timestamp_tolerance=300)

    @classmethod
    def slack(cls, secret_ref: str) -> HmacAuth:
        """Slack's ``X-Slack-Signature: v0=<hex>`` over ``"v0:{timestamp}:{body}"`` with
        ``X-Slack-Request-Timestamp``, five minutes' tolerance."""
        return cls(secret_ref=secret_ref, header="X-Slack-Signature", prefix="v0=", timestamp_header="X-Slack-Request-Timestamp",
                   signed_template="v0:{timestamp}:{body}", timestamp_tolerance=300)

    @classmethod
    def shopify(cls, secret_ref: str) -> HmacAuth:
        """Shopify's ``X-Shopify-Hmac-Sha256``: the base64 HMAC-SHA256 of the body."""
        return cls(secret_ref=secret_ref, header="X-Shopify-Hmac-Sha256", encoding="base64")

    @classmethod
    def linear(cls, secret_ref: str) -> HmacAuth:
        """Linear's ``Linear-Signature``: the hex HMAC-SHA256 of the body, whose
        ``webhookTimestamp`` must lie within a minute of now."""
        return cls(secret_ref=secret_ref, header="Linear-Signature", timestamp_field="webhookTimestamp", timestamp_tolerance=60)

    @classmethod
    def intercom(cls, secret_ref: str) -> HmacAuth:
        """Intercom's ``X-Hub-Signature: sha1=<hex>``: the HMAC-SHA1 of the body."""
        return cls(secret_ref=secret_ref, header="X-Hub-Signature", prefix="sha1=", algorithm="sha1")


@dataclass(frozen=True)
class TokenAuth:
    """A shared token the sender puts in ``header`` (after ``prefix``), compared with the
    secret in constant time. ``TokenAuth.gitlab(secret_ref=...)`` is GitLab's ``X-Gitlab-Token``."""

    secret_ref: str
    header: str
    prefix: str = ""

    def __post_init__(self) -> None:
        for name in ("secret_ref", "header", "prefix"):
            _string(f"TokenAuth: {name}", getattr(self, name))
        if not self.header:
            raise InvalidWebhook('TokenAuth: the header the token comes in is empty, e.g. header="X-Gitlab-Token"')
        _check_secret_ref("TokenAuth", self.secret_ref)

    @classmethod
    def gitlab(cls, secret_ref: str) -> TokenAuth:
        """GitLab's ``X-Gitlab-Token`` (the webhook's "Secret token")."""
        return cls(secret_ref=secret_ref, header="X-Gitlab-Token")


@dataclass(frozen=True)
class HeaderTriggerKey:
    """The request header that identifies a delivery (``HeaderTriggerKey("X-GitHub-Delivery")``):
    a redelivery with the same value maps to the run the first one started."""

    header: str

    def __post_init__(self) -> None:
        if not _string("HeaderTriggerKey: header", self.header):
            raise InvalidWebhook("HeaderTriggerKey: the header name is empty")


@dataclass(frozen=True)
class BodyTriggerKey:
    """The field of the (JSON or form) body that identifies a delivery
    (``BodyTriggerKey("id")``, Stripe's event id; dots walk into objects: ``"event.id"``)."""

    field: str

    def __post_init__(self) -> None:
        f = _string("BodyTriggerKey: field", self.field)
        if not f or f.startswith(".") or f.endswith(".") or ".." in f:
            raise InvalidWebhook(f'BodyTriggerKey("{f}"): want a field name such as "id", or a dotted path such as "event.id"')


Auth = Union[HmacAuth, TokenAuth, str, None]


@dataclass(frozen=True)
class WebhookSpec:
    """One webhook route that starts the workflow.

    - ``slug``: the route's last path segment: lower-case letters, digits and dashes.
    - ``provider``: a label copied into ``inp["webhook"]["provider"]`` (``"github"``).
    - ``auth``: ``HmacAuth(...)``, one of its presets (``HmacAuth.github(...)``,
      ``HmacAuth.stripe(...)``, ...), ``TokenAuth(...)``, ``TokenAuth.gitlab(...)`` or ``"none"`` (no verification: local development and trusted internal routes only).
      When unset, ``provider`` must name a scheme (``"github"``, ``"hmac"``,
      ``"standard-webhooks"`` or ``"none"``).
    - ``trigger_key``: ``HeaderTriggerKey("X-...")`` or ``BodyTriggerKey("id")``: what
      identifies a delivery; by default the body's SHA-256.
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
    trigger_key: Union[HeaderTriggerKey, BodyTriggerKey, str, None] = None
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
        if self.trigger_key is not None and not isinstance(self.trigger_key, (HeaderTriggerKey, BodyTriggerKey)):
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
        if isinstance(auth, (HmacAuth, TokenAuth)):
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
