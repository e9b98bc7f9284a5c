from typing import Annotated

from fastapi import APIRouter, Query, status

from labelloop.access.projects import get_project
from labelloop.annotate.service import next_tasks
from labelloop.api.deps import SessionDep
from labelloop.api.schemas import AnnotationOut, SubmitRequest, TaskOut
from labelloop.loop import submit_answer

router = APIRouter(tags=["annotate"])


@router.get("/projects/{project}/tasks", response_model=list[TaskOut])
def fetch_tasks(project: str, session: SessionDep,
                annotator: Annotated[str, Query(min_length=1, max_length=200)],
                limit: Annotated[int, Query(ge=1, le=500)] = 10) -> list[TaskOut]:
    """The annotator's next tasks, each with its pre-label and why it was routed to a human."""
    tasks = next_tasks(session, get_project(session, project), annotator, limit)
    return [TaskOut(**t.to_dict()) for t in tasks]


@router.post("/tasks/{task_id}/annotations", response_model=AnnotationOut,
             status_code=status.HTTP_201_CREATED)
def submit_annotation(task_id: int, body: SubmitRequest, session: SessionDep) -> AnnotationOut:
    """Accept the pre-label or correct it. The last answer of a batch runs its QA."""
    annotation = submit_answer(session, task_id, body.annotator, body.label, body.seconds_spent)
    return AnnotationOut.model_validate(annotation)
