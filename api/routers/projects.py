from fastapi import APIRouter, status

from labelloop.access.projects import create_project, get_project, list_projects
from labelloop.api.deps import SessionDep
from labelloop.api.schemas import ProjectCreate, ProjectOut

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create(body: ProjectCreate, session: SessionDep) -> ProjectOut:
    """Create a project with its label schema, critical labels and quality knobs."""
    fields = body.model_dump()
    project = create_project(session, fields.pop("name"), fields.pop("labels"), **fields)
    return ProjectOut.model_validate(project)


@router.get("", response_model=list[ProjectOut])
def list_all(session: SessionDep) -> list[ProjectOut]:
    return [ProjectOut.model_validate(p) for p in list_projects(session)]


@router.get("/{project}", response_model=ProjectOut)
def read(project: str, session: SessionDep) -> ProjectOut:
    """A project by id or name."""
    return ProjectOut.model_validate(get_project(session, project))
