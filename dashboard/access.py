"""Who may see what on the dashboard: the access policy and the binding rule.

Owns reading the policy from the app's secrets (Streamlit's `secrets.toml`), deciding from an
OIDC user's claims which environments they may open and whether they hold a role (`reveal_pii`,
`replay`), and whether an address is local. Configuration, next to Streamlit's `[auth]`:

    [eventscope.access]
    groups_claim = "groups"          # the claim holding the user's groups (default "groups")
    [eventscope.access.environments.default]   # one table per environment; "*" for the rest
    users = ["ann@example.com"]      # e-mail addresses (the `email` claim)
    groups = ["oncall"]
    [eventscope.access.roles.reveal_pii]
    groups = ["privacy-officers"]

With login configured and no `environments` table, every logged-in user sees every
environment; with one, an environment without an entry (and no "*") is shown to nobody. A
role without an entry is held by nobody. Without login configured there are no users: every
environment is shown and the roles are held (the dashboard is then only bound to a local
address, see `eventscope dashboard --insecure-bind`). Pure, except `secrets_files` and
`login_configured`, which read the secrets files.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("reveal_pii", "replay")


@dataclass(frozen=True)
class Allowed:
    """Users (by e-mail) and groups one permission is given to."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def admits(self, email: str | None, groups: Iterable[str]) -> bool:
        return (email is not None and email.lower() in self.users) or bool(
            self.groups.intersection(groups))


@dataclass(frozen=True)
class Policy:
    """The dashboard's access policy (see the module docstring)."""

    login: bool = False
    groups_claim: str = "groups"
    environments: Mapping[str, Allowed] | None = None
    roles: Mapping[str, Allowed] = field(default_factory=dict)


def policy_from(secrets: Mapping[str, Any]) -> Policy:
    """The policy the secrets describe; a malformed entry allows nobody, never everybody."""
    access = _table(_table(secrets.get("eventscope")).get("access"))
    environments = access.get("environments")
    return Policy(
        login="auth" in secrets,
        groups_claim=str(access.get("groups_claim", "groups")),
        environments=None if environments is None else {
            str(name): _allowed(entry) for name, entry in _table(environments).items()},
        roles={str(name): _allowed(entry) for name, entry in _table(access.get("roles")).items()},
    )


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _allowed(entry: Any) -> Allowed:
    entry = _table(entry)
    return Allowed(users=frozenset(str(u).lower() for u in _names(entry.get("users"))),
                   groups=frozenset(str(g) for g in _names(entry.get("groups"))))


def _names(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def claims_groups(claims: Mapping[str, Any], policy: Policy) -> list[str]:
    """The user's groups from their claims (a list, or one string)."""
    found = claims.get(policy.groups_claim)
    if isinstance(found, str):
        return [found]
    return [str(g) for g in found] if isinstance(found, (list, tuple)) else []


def logged_in(claims: Mapping[str, Any], policy: Policy) -> bool:
    """Whether the session may see anything at all: no login configured, or logged in."""
    return not policy.login or bool(claims.get("is_logged_in"))


def visible_environments(names: Iterable[str], claims: Mapping[str, Any],
                         policy: Policy) -> list[str]:
    """The environments this user may open, in the given order."""
    names = list(names)
    if not policy.login:
        return names
    if not claims.get("is_logged_in"):
        return []
    if policy.environments is None:
        return names
    email, groups = _identity(claims, policy)
    return [name for name in names
            if policy.environments.get(name, policy.environments.get("*", Allowed()))
            .admits(email, groups)]


def holds(role: str, claims: Mapping[str, Any], policy: Policy) -> bool:
    """Whether this user holds a role (`reveal_pii`, `replay`)."""
    if not policy.login:
        return True
    if not claims.get("is_logged_in"):
        return False
    email, groups = _identity(claims, policy)
    return policy.roles.get(role, Allowed()).admits(email, groups)


def _identity(claims: Mapping[str, Any], policy: Policy) -> tuple[str | None, list[str]]:
    email = claims.get("email")
    verified = claims.get("email_verified", True) is not False  # an unverified e-mail is no one
    return (str(email) if email and verified else None), claims_groups(claims, policy)


def is_local_address(host: str) -> bool:
    """Whether binding to `host` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name that may resolve anywhere


def secrets_files(app_dir: Path, cwd: Path | None = None) -> list[Path]:
    """Where Streamlit reads `secrets.toml` for an app run from `cwd`: the user's, the
    project's (cwd) and the app folder's `.streamlit/`."""
    cwd = cwd or Path.cwd()
    return [Path.home() / ".streamlit" / "secrets.toml", cwd / ".streamlit" / "secrets.toml",
            app_dir / ".streamlit" / "secrets.toml"]


def login_configured(files: Iterable[Path]) -> bool:
    """Whether any of the secrets files holds an `[auth]` section (unreadable ones do not)."""
    for path in files:
        try:
            if "auth" in tomllib.loads(path.read_text()):
                return True
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
    return False
