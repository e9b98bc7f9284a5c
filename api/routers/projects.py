from fastapi import APIRouter, status
from sqlalchemy import select

from labelloop.access import audit
from labelloop.access.projects import (
    create_project,
    list_projects,
    update_guideline,
    update_project,
)
from labelloop.api.deps import Admin, AdminProject, CallerDep, ManageData, ReadProject, SessionDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import GuidelineRequest, ProjectCreate, ProjectOut, ProjectUpdate
from labelloop.core.enums import AuditAction, Role
from labelloop.store.models import Membership, Project

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects", tags=["projects"])


@router.post("", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create(body: ProjectCreate, admin: Admin, session: SessionDep) -> ProjectOut:
    """Create a project with its label schema, critical labels and quality knobs (admin)."""
    fields = body.model_dump()
    project = create_project(session, fields.pop("name"), fields.pop("labels"), **fields)
    audit.record(session, admin.name, AuditAction.PROJECT, project_id=project.id,
                 target=project.name, event="create")
    return ProjectOut.model_validate(project)


@router.get("", response_model=list[ProjectOut])
def list_all(caller: CallerDep, session: SessionDep) -> list[ProjectOut]:
    """The projects you are a member of (every project, for an admin)."""
    if caller.user.role == Role.ADMIN:
        rows = list_projects(session)
    else:
        rows = list(session.scalars(select(Project).join(
            Membership, Membership.project_id == Project.id).where(
            Membership.user_id == caller.user.id).order_by(Project.id)))
    return [ProjectOut.model_validate(p) for p in rows]


@router.get("/{project}", response_model=ProjectOut)
def read(access: ReadProject) -> ProjectOut:
    """A project by id or name."""
    return ProjectOut.model_validate(access.project)


@router.patch("/{project}", response_model=ProjectOut)
def update(body: ProjectUpdate, access: AdminProject, session: SessionDep) -> ProjectOut:
    """Change routing and quality settings (checked as at creation)."""
    changes = body.model_dump(exclude_unset=True)
    project = update_project(session, access.project, **changes)
    audit.record(session, access.user.name, AuditAction.PROJECT, project_id=project.id,
                 target=project.name, event="update", changes=changes)
    return ProjectOut.model_validate(project)


@router.put("/{project}/guideline", response_model=ProjectOut)
def guideline(body: GuidelineRequest, access: ManageData, session: SessionDep) -> ProjectOut:
    """A new guideline text; answers from now on record the new guideline version."""
    project = update_guideline(session, access.project, body.text)
    audit.record(session, access.user.name, AuditAction.GUIDELINE, project_id=project.id,
                 target=project.name, version=project.guideline_version)
    return ProjectOut.model_validate(project)
