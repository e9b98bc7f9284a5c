"""Sign-in, users, tokens, memberships and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy import select

from labelloop.access import audit
from labelloop.access.policy import Action, authorize_global
from labelloop.access.users import (
    add_member,
    create_token,
    create_user,
    get_user,
    remove_member,
    revoke_token,
)
from labelloop.api.deps import (
    MAX_ID,
    Admin,
    AdminProject,
    CallerDep,
    IdPath,
    ReadAudit,
    SessionDep,
    start_cookie_session,
)
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import (
    AuditEventOut,
    LoginOut,
    LoginRequest,
    MemberIn,
    MemberOut,
    TokenCreate,
    TokenOut,
    UserCreate,
    UserOut,
)
from labelloop.core.enums import AuditAction
from labelloop.store.models import ApiToken, Membership, User

router = APIRouter(route_class=UnitOfWorkRoute, tags=["users and access"])
UserName = Annotated[str, Path(min_length=1, max_length=200)]


def _token_out(token: ApiToken, user: User, plain: str | None = None) -> TokenOut:
    return TokenOut(id=token.id, user=user.name, name=token.name, created_at=token.created_at,
                    revoked_at=token.revoked_at, token=plain)


@router.post("/auth/login", response_model=LoginOut)
def sign_in(body: LoginRequest, request: Request, session: SessionDep) -> LoginOut:
    """Check a name and password; returns a new token and sets the session cookie that the
    web pages use (unsafe requests with the cookie must send X-CSRF-Token)."""
    user, token, plain, csrf = start_cookie_session(request, session, body.name,
                                                    body.password)
    return LoginOut(user=UserOut.model_validate(user), token=plain, token_id=token.id,
                    csrf_token=csrf)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(request: Request, caller: CallerDep, session: SessionDep) -> Response:
    """Revoke the token this request came with and clear the session cookie."""
    revoke_token(session, caller.token.id, by=caller.user)
    request.session.clear()
    audit.record(session, caller.user.name, AuditAction.TOKEN,
                 target=f"token {caller.token.id}", event="logout")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/me", response_model=UserOut)
def me(caller: CallerDep) -> UserOut:
    return UserOut.model_validate(caller.user)


@router.get("/users", response_model=list[UserOut])
def list_users(_admin: Admin, session: SessionDep) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in session.scalars(select(User).order_by(User.id))]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def new_user(body: UserCreate, admin: Admin, session: SessionDep) -> UserOut:
    user = create_user(session, body.name, body.role, body.password)
    audit.record(session, admin.name, AuditAction.USER, target=user.name, event="create",
                 role=user.role.value)
    return UserOut.model_validate(user)


def _self_or_admin(caller: CallerDep, session: SessionDep, name: str) -> User:
    user = get_user(session, name)
    if user.id != caller.user.id:
        authorize_global(caller.user, Action.ADMIN)
    return user


@router.post("/users/{name}/tokens", response_model=TokenOut,
             status_code=status.HTTP_201_CREATED)
def new_token(name: UserName, body: TokenCreate, caller: CallerDep,
              session: SessionDep) -> TokenOut:
    """A new API token for yourself (or, as admin, for anyone). Its text is shown once."""
    user = _self_or_admin(caller, session, name)
    token, plain = create_token(session, user, body.name)
    audit.record(session, caller.user.name, AuditAction.TOKEN, target=f"token {token.id}",
                 event="create", user=user.name)
    return _token_out(token, user, plain)


@router.get("/users/{name}/tokens", response_model=list[TokenOut])
def list_tokens(name: UserName, caller: CallerDep, session: SessionDep) -> list[TokenOut]:
    user = _self_or_admin(caller, session, name)
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                           .order_by(ApiToken.id))
    return [_token_out(t, user) for t in rows]


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke(token_id: IdPath, caller: CallerDep, session: SessionDep) -> TokenOut:
    """Revoke one of your tokens (any token, as admin): it stops working at once."""
    token = revoke_token(session, token_id, by=caller.user)
    owner = session.get(User, token.user_id)
    assert owner is not None
    audit.record(session, caller.user.name, AuditAction.TOKEN, target=f"token {token.id}",
                 event="revoke", user=owner.name)
    return _token_out(token, owner)


@router.get("/projects/{project}/members", response_model=list[MemberOut])
def members(access: AdminProject, session: SessionDep) -> list[MemberOut]:
    rows = session.execute(select(User.name, Membership.role).join(
        Membership, Membership.user_id == User.id).where(
        Membership.project_id == access.project.id).order_by(User.name)).all()
    return [MemberOut(user=name, role=role) for name, role in rows]


@router.put("/projects/{project}/members", response_model=MemberOut)
def set_member(body: MemberIn, access: AdminProject, session: SessionDep) -> MemberOut:
    """Give a user a role in the project (or change it)."""
    user = get_user(session, body.user)
    row = add_member(session, access.project, user, body.role)
    audit.record(session, access.user.name, AuditAction.MEMBER, project_id=access.project.id,
                 target=user.name, event="set", role=row.role.value)
    return MemberOut(user=user.name, role=row.role)


@router.delete("/projects/{project}/members/{name}", status_code=status.HTTP_204_NO_CONTENT)
def drop_member(name: UserName, access: AdminProject, session: SessionDep) -> Response:
    user = get_user(session, name)
    remove_member(session, access.project, user)
    audit.record(session, access.user.name, AuditAction.MEMBER, project_id=access.project.id,
                 target=user.name, event="remove")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/projects/{project}/audit", response_model=list[AuditEventOut])
def project_audit(access: ReadAudit, session: SessionDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                  ) -> list[AuditEventOut]:
    """Who did what in the project, newest first."""
    rows = audit.read_log(session, project_id=access.project.id, limit=limit,
                          before_id=before_id)
    return [AuditEventOut.model_validate(e) for e in rows]


@router.get("/audit", response_model=list[AuditEventOut])
def all_audit(_admin: Admin, session: SessionDep,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
              ) -> list[AuditEventOut]:
    """Every audit event (users and tokens included), newest first."""
    return [AuditEventOut.model_validate(e)
            for e in audit.read_log(session, limit=limit, before_id=before_id)]

