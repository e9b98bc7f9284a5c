from typing import Annotated

from fastapi import APIRouter, Path, status
from sqlalchemy import select

from labelloop.access import audit
from labelloop.access.projects import (
    create_project,
    get_guideline,
    guideline_versions,
    list_projects,
    update_guideline,
    update_project,
)
from labelloop.api.deps import Admin, AdminProject, CallerDep, ManageData, ReadProject, SessionDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import (
    GuidelineOut,
    GuidelineRequest,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
)
from labelloop.core.enums import AuditAction, Role
from labelloop.store.models import Membership, Project

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/projects", tags=["projects"])


@router.post("", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create(body: ProjectCreate, admin: Admin, session: SessionDep) -> ProjectOut:
    """Create a project with its label schema, critical labels and quality knobs (admin)."""
    fields = body.model_dump()
    project = create_project(session, fields.pop("name"), fields.pop("labels"),
                             created_by=admin.name, **fields)
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
    """A new version of the guideline (ml-team): its text, a note on what changed and the
    labels the change affects. Answers from now on record the new version."""
    project = update_guideline(session, access.project, body.text, note=body.note,
                               labels=body.labels, by=access.user.name)
    audit.record(session, access.user.name, AuditAction.GUIDELINE, project_id=project.id,
                 target=project.name, version=project.guideline_version)
    return ProjectOut.model_validate(project)


@router.get("/{project}/guidelines", response_model=list[GuidelineOut])
def list_guidelines(access: ReadProject, session: SessionDep) -> list[GuidelineOut]:
    """Every version of the guideline, oldest first, each with who changed it, when, why
    and the labels it affects."""
    return [GuidelineOut.model_validate(g) for g in guideline_versions(session, access.project)]


@router.get("/{project}/guidelines/{guideline_version}", response_model=GuidelineOut)
def show_guideline(guideline_version: Annotated[int, Path(ge=1, le=2**31 - 1)],
                   access: ReadProject,
                   session: SessionDep) -> GuidelineOut:
    """One version of the guideline."""
    return GuidelineOut.model_validate(get_guideline(session, access.project,
                                                     guideline_version))
