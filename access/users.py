"""Users, their API tokens and project memberships.

A token reads ``ll_<id>_<secret>``; only an Argon2 hash of the secret is stored (pwdlib),
so it is shown once, at creation. Passwords get pwdlib's recommended Argon2 (64 MiB, about
0.1 s a check: slow on purpose, people pick guessable passwords). A token's secret is 256
random bits that no amount of guessing reaches, so its hash is a light Argon2 (8 MiB, one
pass, about 4 ms): 50 annotators signing in at once must not take the server's cores for
seconds. A process also remembers which token strings it has verified, and runs at most
one check per core at a time; revocation is read from the database on every request.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import threading

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.enums import Role
from labelloop.core.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from labelloop.core.names import check_name
from labelloop.store.models import ApiToken, Membership, Project, User, utcnow

_hasher = PasswordHash.recommended()  # passwords
_token_hasher = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1),))
_checks = threading.BoundedSemaphore(os.cpu_count() or 2)

_TOKEN = re.compile(r"^ll_([0-9]{1,18})_([A-Za-z0-9_-]{20,100})$")
_verified: dict[str, int] = {}  # sha256(token) -> token id, for tokens this process checked
_verified_lock = threading.Lock()
BOOTSTRAP_ADMIN = "admin"


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not a password anyone has")


def create_user(session: Session, name: str, role: Role | str = Role.ANNOTATOR,
                password: str | None = None) -> User:
    name = check_name(name, "name")
    role = _role(role)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise ConflictError(f"user {name!r} already exists", where="name")
    user = User(name=name, role=role,
                password_hash=_hasher.hash(password) if password else None)
    session.add(user)
    session.flush()
    return user


def _role(role: object) -> Role:
    if role in set(Role):
        return Role(role)
    raise ValidationError(f"role must be one of {[r.value for r in Role]}", where="role")


def get_user(session: Session, ref: str | int) -> User:
    user = (session.get(User, ref) if isinstance(ref, int)
            else session.scalar(select(User).where(User.name == ref)))
    if user is None:
        raise NotFoundError(f"no user {str(ref)[:200]!r}", where="user")
    return user


def user_for(session: Session, name: str) -> User:
    """The user called ``name``, made (role annotator) if none is: local callers that still
    name annotators by string (the CLI's local mode, the demo, the tests)."""
    user = session.scalar(select(User).where(User.name == name))
    return user if user is not None else create_user(session, name)


def create_token(session: Session, user: User, name: str = "api") -> tuple[ApiToken, str]:
    """A new token for ``user``: the row and the one time its plain text is shown."""
    secret = secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=check_name(name, "token name"),
                     secret_hash=_token_hasher.hash(secret))
    session.add(token)
    session.flush()
    return token, f"ll_{token.id}_{secret}"


def revoke_token(session: Session, token_id: int, *, by: User) -> ApiToken:
    """Revoke one of ``by``'s tokens (any token, for an admin)."""
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != by.id and by.role != Role.ADMIN):
        raise NotFoundError(f"no token {token_id}", where="token_id")
    token.revoked_at = token.revoked_at or utcnow()
    session.flush()
    return token


def authenticate(session: Session, plain: str) -> tuple[User, ApiToken]:
    """The user behind a bearer token; ``AuthenticationError`` when it is malformed,
    unknown, revoked, wrong or its user is deactivated."""
    match = _TOKEN.match(plain or "")
    if match is None:
        raise AuthenticationError("malformed token: expected ll_<id>_<secret>",
                                  where="Authorization")
    found = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                            .where(ApiToken.id == int(match.group(1)))).first()
    if found is None or found[0].revoked_at is not None:
        raise AuthenticationError("unknown or revoked token", where="Authorization")
    token, user = found
    key = hashlib.sha256(plain.encode()).hexdigest()
    with _verified_lock:
        known = _verified.get(key) == token.id
    if not known:
        with _checks:
            good = _token_hasher.verify(match.group(2), token.secret_hash)
        if not good:
            raise AuthenticationError("unknown or revoked token", where="Authorization")
        with _verified_lock:
            _verified[key] = token.id
    if not user.active:
        raise AuthenticationError("this user is deactivated", where="Authorization")
    return user, token


def login(session: Session, name: str, password: str) -> tuple[User, ApiToken, str]:
    """Check a password; a new token for the session that follows."""
    user = session.scalar(select(User).where(User.name == name))
    known = user is not None and bool(user.password_hash) and user.active
    with _checks:  # as slow for an unknown name: the time taken does not tell names apart
        good = _hasher.verify(password, user.password_hash if known else _dummy_hash())  # type: ignore[union-attr]
    if not (known and good):
        raise AuthenticationError("wrong name or password", where="body")
    token, plain = create_token(session, user, "login")
    return user, token, plain


def bootstrap_admin(session: Session) -> User:
    """The admin the local CLI acts as, made at first run."""
    user = session.scalar(select(User).where(User.role == Role.ADMIN).order_by(User.id))
    if user is None:
        user = session.scalar(select(User).where(User.name == BOOTSTRAP_ADMIN))
        if user is None:
            user = create_user(session, BOOTSTRAP_ADMIN, Role.ADMIN)
        else:
            user.role = Role.ADMIN
    return user


def add_member(session: Session, project: Project, user: User, role: Role | str) -> Membership:
    """Give ``user`` a role in ``project`` (or change it)."""
    role = _role(role)
    row = session.scalar(select(Membership).where(Membership.project_id == project.id,
                                                  Membership.user_id == user.id))
    if row is None:
        row = Membership(project_id=project.id, user_id=user.id, role=role)
        session.add(row)
    row.role = role
    session.flush()
    return row


def remove_member(session: Session, project: Project, user: User) -> None:
    row = session.scalar(select(Membership).where(Membership.project_id == project.id,
                                                  Membership.user_id == user.id))
    if row is None:
        raise NotFoundError(f"{user.name!r} is not a member of {project.name!r}", where="user")
    session.delete(row)
    session.flush()
