"""The store's context in a request: headers and cookies a profile sets, and the secret some need.

Many chains choose the store not by URL but by a request header or a cookie
set when a store is picked, and their APIs want chain-wide headers (Accept,
an API version) and sometimes a key. A profile's `request` object says so
with templates naming `{store_code}` and `{secret}`. The secret itself never
sits in the profile: it is read at run time from an environment variable or
from a named connection through a lookup the caller injects (the DAG and the
commands give an Airflow one), so this module imports nothing from Airflow.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pricegroups.errors import ConfigError

STORE_FIELD = "store_code"
SECRET_FIELD = "secret"
TEMPLATE_FIELDS = (STORE_FIELD, SECRET_FIELD)
MASK = "***"
REQUEST_KEYS = ("headers", "cookies", "secret")
SECRET_KEYS = ("env", "connection")
# the scraper's own: a clear User-Agent is part of being polite; cookies go in "cookies"
RESERVED_HEADERS = frozenset({"user-agent", "cookie", "host", "content-length"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header or cookie name (RFC 9110 token)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

ConnectionLookup = Callable[[str], str]  # connection id -> its secret (e.g. an Airflow connection's password)


@dataclass(frozen=True)
class SecretRef:
    """Where a profile's secret is read at run time: an environment variable or a named connection."""

    env: str | None = None
    connection: str | None = None

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"connection {self.connection!r}"


@dataclass(frozen=True)
class RequestSpec:
    """A profile's `request`: (name, template) pairs for headers and cookies, and the secret's place."""

    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    secret: SecretRef | None = None

    def names_store(self) -> bool:
        """True when a header or cookie carries the store's code (the URL then need not)."""
        return any(_fields(t) & {STORE_FIELD} for _, t in self.headers + self.cookies)


NO_REQUEST = RequestSpec()


def template_fields(template: str, key: str, allowed: tuple[str, ...]) -> set[str]:
    """The fields a template names; ConfigError naming `key` for any other field or a format spec."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"profile key {key!r}: not a valid template ({exc}): {template!r}") from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            fields_text = " or ".join("{" + f + "}" for f in allowed)
            raise ConfigError(f"profile key {key!r}: unknown template field {{{name}}}; expected {fields_text}")
        if spec or conversion:
            raise ConfigError(f"profile key {key!r}: template field {{{name}}} takes no format or conversion")
        names.add(name)
    return names


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _pairs(spec: Any, key: str, has_secret: bool) -> tuple[tuple[str, str], ...]:
    if spec is None:
        return ()
    if not isinstance(spec, Mapping):
        raise ConfigError(f"profile key {key!r}: expected an object: name -> value template, got {spec!r}")
    pairs = []
    for name, value in spec.items():
        where = f"{key}.{name}"
        if name.startswith("_"):
            continue
        if not _TOKEN.match(name):
            raise ConfigError(f"profile key {where!r}: not a valid {key.rsplit('.', 1)[-1][:-1]} name")
        if key.endswith("headers") and name.lower() in RESERVED_HEADERS:
            raise ConfigError(f"profile key {where!r}: the scraper sets this header itself"
                              " (cookies go in 'request.cookies')")
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise ConfigError(f"profile key {where!r}: expected a one-line string template, got {value!r}")
        if SECRET_FIELD in template_fields(value, where, TEMPLATE_FIELDS) and not has_secret:
            raise ConfigError(f"profile key {where!r}: names {{secret}} but the profile has no 'request.secret'")
        pairs.append((name, value))
    return tuple(pairs)


def _secret(spec: Any) -> SecretRef | None:
    key = "request.secret"
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or len([k for k in spec if not str(k).startswith("_")]) != 1:
        raise ConfigError(f"profile key {key!r}: expected {{'env': 'VARIABLE'}} or {{'connection': 'conn_id'}}"
                          f" (the secret itself never goes in a profile), got {spec!r}")
    for name in spec:
        if name not in SECRET_KEYS and not str(name).startswith("_"):
            raise ConfigError(f"profile key '{key}.{name}': unknown key; expected one of {', '.join(SECRET_KEYS)}")
    env, connection = spec.get("env"), spec.get("connection")
    if env is not None and (not isinstance(env, str) or not _ENV_NAME.match(env)):
        raise ConfigError(f"profile key '{key}.env': expected an environment variable name, got {env!r}")
    if connection is not None and (not isinstance(connection, str) or not connection.strip()):
        raise ConfigError(f"profile key '{key}.connection': expected a connection id, got {connection!r}")
    return SecretRef(env=env, connection=connection)


def compile_request(spec: Any) -> RequestSpec:
    """Validate a profile's `request` object (templates, names, the secret's place)."""
    if spec is None:
        return NO_REQUEST
    if not isinstance(spec, Mapping):
        raise ConfigError(f"profile key 'request': expected an object with {', '.join(REQUEST_KEYS)}, got {spec!r}")
    for name in spec:
        if name not in REQUEST_KEYS and not str(name).startswith("_"):
            raise ConfigError(f"profile key 'request.{name}': unknown key; expected one of {', '.join(REQUEST_KEYS)}")
    secret = _secret(spec.get("secret"))
    return RequestSpec(_pairs(spec.get("headers"), "request.headers", secret is not None),
                       _pairs(spec.get("cookies"), "request.cookies", secret is not None), secret)


@dataclass(frozen=True)
class RequestHeaders:
    """The headers a profile sets on one request, and the same as shown: the secret masked."""

    values: Mapping[str, str] = field(default_factory=dict)
    display: Mapping[str, str] = field(default_factory=dict)

    def shown(self) -> dict[str, str]:
        """The headers as logs and `chains try` show them (never the secret)."""
        return dict(self.display)


NO_HEADERS = RequestHeaders()


def read_secret(ref: SecretRef, connection_lookup: ConnectionLookup | None) -> str:
    """The secret's value now; ConfigError saying where it was looked for."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise ConfigError(f"profile key 'request.secret.env': environment variable {ref.env} is not set")
        return value
    if connection_lookup is None:
        raise ConfigError(f"profile key 'request.secret.connection': connection {ref.connection!r} cannot be"
                          " read here (no connection lookup; the DAG and the commands give one)")
    try:
        value = connection_lookup(ref.connection)
    except ConfigError:
        raise
    except Exception as exc:  # the lookup is the caller's (Airflow's): its failure is a config problem here
        raise ConfigError(f"profile key 'request.secret.connection': connection {ref.connection!r}"
                          f" cannot be read: {type(exc).__name__}: {exc}") from exc
    if not value:
        raise ConfigError(f"profile key 'request.secret.connection': connection {ref.connection!r} has no secret"
                          " (its password is empty)")
    return value


class ChainRequests:
    """The headers of one chain's requests: static ones always, store ones on a store's catalogue.

    The secret is read once, on first need; a failure to read it is raised on
    every request that needs it, so each store fails with the reason.
    """

    def __init__(self, spec: RequestSpec, connection_lookup: ConnectionLookup | None = None):
        self.spec = spec
        self._lookup = connection_lookup
        self._secret: str | None = None
        self._error: ConfigError | None = None

    def _read_secret(self) -> str:
        if self._error is not None:
            raise self._error
        if self._secret is None:
            try:
                self._secret = read_secret(self.spec.secret, self._lookup)
            except ConfigError as exc:
                self._error = exc
                raise
        return self._secret

    def headers(self, store_code: str | None) -> RequestHeaders:
        """Headers for a request of `store_code`'s catalogue, or (None) of the store locator.

        A header or cookie naming {store_code} is left out of locator requests.
        """
        values: dict[str, str] = {}
        display: dict[str, str] = {}
        cookies: list[tuple[str, str, str]] = []
        for kind, pairs in (("header", self.spec.headers), ("cookie", self.spec.cookies)):
            for name, template in pairs:
                names = _fields(template)
                if STORE_FIELD in names and store_code is None:
                    continue
                secret = self._read_secret() if SECRET_FIELD in names else ""
                value = template.format(**{STORE_FIELD: store_code or "", SECRET_FIELD: secret})
                shown = template.format(**{STORE_FIELD: store_code or "", SECRET_FIELD: MASK})
                if kind == "header":
                    values[name], display[name] = value, shown
                else:
                    cookies.append((name, value, shown))
        if cookies:  # one Cookie header, so a Set-Cookie kept by the session cannot change the store
            values["Cookie"] = "; ".join(f"{n}={v}" for n, v, _ in cookies)
            display["Cookie"] = "; ".join(f"{n}={s}" for n, _, s in cookies)
        return RequestHeaders(values, display) if values else NO_HEADERS
