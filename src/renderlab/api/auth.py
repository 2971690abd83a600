"""Who is calling: bearer JWTs in three modes (``RENDERLAB_AUTH``), and the user row behind a
token identifier.

- **dev** (the default when nothing is configured): renderlab signs its own HS256 tokens with a
  secret kept in the data dir (made on first start) or ``RENDERLAB_JWT_SECRET``;
  ``renderlab token NAME`` and ``POST /v1/auth/token`` hand them out to anyone who asks, which
  is the point on a laptop and why ``serve`` refuses a public address in this mode.
- **hs256**: the app's own backend mints HS256 tokens with ``RENDERLAB_JWT_SECRET`` (issuer
  ``RENDERLAB_JWT_ISSUER``, default ``renderlab``; audience checked when configured). There is
  no sign-in route; ``renderlab token`` still works for whoever holds the secret.
- **jwks**: ``RENDERLAB_JWKS_URL``, ``RENDERLAB_JWT_ISSUER`` and ``RENDERLAB_JWT_AUDIENCE`` (all
  required: without an audience, tokens the same provider made for any other application
  would be accepted) name a provider such as Clerk or Auth0; RS256 keys come from its JWKS
  document, cached and refreshed by PyJWT's ``PyJWKClient``.

Claims become database rows, so a validly signed token whose ``iss``/``sub``, ``name`` or
``email`` could not be stored (too long for its column, NUL, a lone surrogate) is a 401 like
any other unusable token. In the two HS256 modes the subject is a user's name and is
normalised to NFC, so ``é`` typed precomposed or as ``e`` + combining accent is one user; a
provider's subject is an opaque id and is kept byte for byte.

Each mode accepts exactly one algorithm, checked from the token header before any key is
looked up, so ``alg: none`` and the HS256-signed-with-the-public-key trick fail the same way
as a bad signature: 401. A user is ``"<iss>|<sub>"`` (Convex's token identifier); their row is
created on first sight and remembered in a small in-process cache, so a request costs no
database write and usually no user query.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import jwt
import sqlalchemy as sa
from jwt import PyJWKClient

from renderlab import store
from renderlab.config import Settings, read_or_create_secret
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.models import User
from renderlab.strings import storable

LOCAL_ISSUER = "renderlab"
SECRET_FILE = "jwt_secret"
MIN_SECRET_BYTES = 32


# What the users table can hold (PostgreSQL refuses longer values; SQLite would keep them).
def _max_chars(column: str) -> int:
    """The declared length of a string column of ``users``."""
    column_type = User.__table__.c[column].type
    if not isinstance(column_type, sa.String) or column_type.length is None:
        raise TypeError(f"users.{column} is not a string of bounded length")
    return column_type.length


CLAIM_MAX_CHARS = {name: _max_chars(name) for name in ("token_identifier", "name", "email")}


class AuthError(Exception):
    """The request carries no usable identity (401)."""

    def __init__(self, message: str, *, error: str = "invalid_token") -> None:
        super().__init__(message)
        self.message = message
        self.error = error  # RFC 6750 error code for WWW-Authenticate


class IdentityProviderUnavailable(Exception):
    """The JWKS document could not be fetched (503): not the caller's fault."""


class LocalTokensDisabled(Exception):
    """Tokens are minted here only in zero-setup mode; an identity provider is configured."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified token: the token identifier and the profile claims it carried."""

    token_identifier: str
    email: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: the user row's id and the token identifier (the API's user_id)."""

    user_id: str
    token_identifier: str


class Authenticator:
    """Verifies bearer tokens for one configured mode, and mints them where it holds the
    secret (``dev``, ``hs256``)."""

    def __init__(self, settings: Settings, limits: Limits) -> None:
        self.limits = limits
        self.mode = settings.auth_mode
        self._verified: LRU[str, tuple[Identity, float]] = LRU(limits.auth_cache_size)
        self.jwks: PyJWKClient | None = None
        self.audience: str | None = settings.jwt_audience or None
        self._secret = b""
        if self.mode == "jwks":
            self.algorithm = "RS256"
            self.issuer = _required(settings.jwt_issuer, "RENDERLAB_JWT_ISSUER", ISSUER_WHY)
            self.audience = _required(settings.jwt_audience, "RENDERLAB_JWT_AUDIENCE", AUD_WHY)
            self.jwks = PyJWKClient(
                _required(settings.jwks_url, "RENDERLAB_JWKS_URL", "the provider's keys"),
                cache_jwk_set=True,
                lifespan=limits.jwks_cache_s,
                timeout=limits.jwks_timeout_s,
            )
            return
        self.algorithm = "HS256"
        self.issuer = LOCAL_ISSUER
        if self.mode == "hs256":
            self.issuer = settings.jwt_issuer or LOCAL_ISSUER
            what = "the secret your backend signs tokens with (32 bytes or more)"
            secret = _required(settings.jwt_secret, "RENDERLAB_JWT_SECRET", what, "hs256")
            self._secret = secret.encode()
        elif settings.jwt_secret:
            self._secret = settings.jwt_secret.encode()
        else:
            self._secret = read_or_create_secret(settings.data_path, SECRET_FILE)
        if len(self._secret) < MIN_SECRET_BYTES:
            raise ValueError(f"RENDERLAB_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")

    @property
    def signs(self) -> bool:
        """Whether renderlab holds the signing secret (``dev`` and ``hs256``)."""
        return self.jwks is None

    @property
    def is_local(self) -> bool:
        """``dev`` mode: anyone may sign in with a name (``POST /v1/auth/token``)."""
        return self.mode == "dev"

    @property
    def verify_blocks(self) -> bool:
        """Whether verifying may wait on the network (call it from a thread, then)."""
        return self.jwks is not None

    def issue(self, name: str, *, now: float | None = None) -> tuple[str, int]:
        """A token for user ``name`` signed with our secret: ``(token, expires_at in epoch
        seconds)``. ``dev`` and ``hs256`` only."""
        if not self.signs:
            raise LocalTokensDisabled(
                "an identity provider is configured (RENDERLAB_JWKS_URL): get tokens from it"
            )
        issued = int(now if now is not None else time.time())
        expires = issued + self.limits.token_ttl_s
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": name,
            "name": name,
            "iat": issued,
            "exp": expires,
        }
        if self.audience is not None:
            claims["aud"] = self.audience
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires

    def verify(self, token: str) -> Identity:
        """The identity a token proves, or :class:`AuthError`.

        A token that verified before is answered from memory until it expires: clients send
        the same token with every request, and checking a signature and its claims again costs
        more than the rest of a read.
        """
        identity = self.remembered(token)
        if identity is not None:
            return identity
        identity, expires = self._verify(token)
        self._verified.put(token, (identity, expires))
        return identity

    def remembered(self, token: str) -> Identity | None:
        """The identity of a token verified earlier and not expired yet (never blocks)."""
        known = self._verified.get(token)
        if known is None:
            return None
        identity, expires = known
        return identity if time.time() < expires + self.limits.jwt_leeway_s else None

    def _verify(self, token: str) -> tuple[Identity, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("The bearer token is not a JWT.") from None
        if header.get("alg") != self.algorithm:
            raise AuthError(f"The bearer token must be signed with {self.algorithm}.")
        key: Any = self._secret
        if self.jwks is not None:
            try:
                key = self.jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError as exc:
                raise IdentityProviderUnavailable(str(exc)) from exc
            except jwt.PyJWKSetError as exc:
                raise IdentityProviderUnavailable(str(exc)) from exc
            except jwt.PyJWTError:
                raise AuthError("The bearer token's signing key is unknown.") from None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.limits.jwt_leeway_s,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": self.audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("The bearer token has expired.") from None
        except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
            raise AuthError("The bearer token was issued for another service.") from None
        except jwt.InvalidSignatureError:
            raise AuthError(self._signature_mismatch()) from None
        except jwt.PyJWTError:
            raise AuthError("The bearer token is invalid.") from None
        return self._identity(claims), float(claims["exp"])

    def _signature_mismatch(self) -> str:
        """Signed with another key: in zero-setup mode, nearly always a token minted for
        another data dir (each has its own secret), which the message says how to fix."""
        if not self.signs:
            return "The bearer token's signature does not match this server's key."
        return (
            "The bearer token was signed with another secret than this server's: mint it with "
            "`renderlab token NAME` and the server's RENDERLAB_DATA_DIR, or sign in again."
        )

    def _identity(self, claims: dict[str, Any]) -> Identity:
        """The identity verified claims stand for, refused (401) when they cannot be stored."""
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthError("The bearer token has no subject.")
        if self.signs:  # a user's name: one spelling per user
            subject = unicodedata.normalize("NFC", subject)
        identity = Identity(
            token_identifier=f"{claims['iss']}|{subject}",
            email=_text_claim(claims, "email"),
            name=_text_claim(claims, "name"),
        )
        for field in ("token_identifier", "name", "email"):
            value = getattr(identity, field)
            problem = None if value is None else storable(value)
            if value is not None and len(value) > CLAIM_MAX_CHARS[field]:
                problem = f"is longer than {CLAIM_MAX_CHARS[field]} characters"
            if problem is not None:
                claim = "iss and sub" if field == "token_identifier" else field
                raise AuthError(f"The bearer token's {claim} claim {problem}.")
        return identity


ISSUER_WHY = "the identity provider's issuer, so that tokens of other issuers are refused"
AUD_WHY = (
    "this application's audience: without it, tokens the same identity provider issued for "
    "any other application would be accepted here"
)


def _required(value: str | None, variable: str, why: str, mode: str = "jwks") -> str:
    if not value:
        raise ValueError(f"RENDERLAB_AUTH={mode} needs {variable}: {why}")
    return value


def check_token_name(name: str, limits: Limits) -> str:
    """The name a token is issued for, stripped and in NFC (``é`` and ``e`` + combining accent
    are one user); ValueError says what is wrong."""
    name = unicodedata.normalize("NFC", name.strip())
    if not name or len(name) > limits.token_name_max_chars or not name.isprintable():
        raise ValueError(f"name must be 1 to {limits.token_name_max_chars} printable characters.")
    return name


def _text_claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


class UserDirectory:
    """Token identifier -> user row id, creating the row on first sight.

    The cache only ever holds ids of rows that exist, and renderlab never deletes or re-keys a
    user, so an entry cannot go stale.
    """

    def __init__(self, db: Database, size: int) -> None:
        self._db = db
        self._cache: LRU[str, str] = LRU(size)

    def cached(self, token_identifier: str) -> str | None:
        return self._cache.get(token_identifier)

    def resolve(self, identity: Identity) -> str:
        """The user's row id (blocking: call from a thread)."""
        user_id = self.cached(identity.token_identifier)
        if user_id is not None:
            return user_id
        with self._db.session() as session:
            user = store.get_user_by_token(session, identity.token_identifier)
            user_id = user.id if user is not None else None
        if user_id is None:
            with self._db.transaction() as session:
                user_id = store.get_or_create_user(
                    session,
                    identity.token_identifier,
                    email=identity.email,
                    name=identity.name,
                ).id
        self._cache.put(identity.token_identifier, user_id)
        return user_id


K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small thread-safe least-recently-used map; ``size`` 0 keeps nothing."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
