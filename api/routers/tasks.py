from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from sqlalchemy.orm import Session

from labelloop.access import audit
from labelloop.annotate.progress import BatchProgress, batch_progress
from labelloop.annotate.service import Answer, my_tasks, next_tasks
from labelloop.annotate.views import my_task
from labelloop.api.deps import Annotate, IdPath, SessionDep, SettingsDep
from labelloop.api.routing import UnitOfWorkRoute
from labelloop.api.schemas import AnnotationOut, SubmitRequest, TaskOut
from labelloop.core.enums import AuditAction, JobKind
from labelloop.jobs.service import submit_job
from labelloop.loop import submit_answer
from labelloop.store.models import Batch

router = APIRouter(route_class=UnitOfWorkRoute,
                   prefix="/projects/{project}/tasks", tags=["annotate"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("", response_model=list[TaskOut])
def list_mine(access: Annotate, session: SessionDep, limit: Limit = 10) -> list[TaskOut]:
    """Your tasks handed out and not yet answered (nothing new is handed out)."""
    tasks = my_tasks(session, access.project, access.user.name, limit)
    return [TaskOut(**t.to_dict()) for t in tasks]


@router.post("/next", response_model=list[TaskOut])
def hand_out(access: Annotate, session: SessionDep, settings: SettingsDep,
             limit: Limit = 10) -> list[TaskOut]:
    """Your next tasks: those you hold, topped up with open tasks that still need people,
    each with its pre-label and why it was routed to a human."""
    tasks = next_tasks(session, access.project, access.user.name, limit,
                       timeout_s=settings.assignment_timeout_s)
    return [TaskOut(**t.to_dict()) for t in tasks]


@router.get("/progress", response_model=BatchProgress)
def progress(access: Annotate, session: SessionDep,
             batch_id: Annotated[int, Query(ge=1, le=2**63 - 1)]) -> BatchProgress:
    """A batch's tasks done of all, and your answered, skipped and held tasks in it."""
    return batch_progress(session, access.project, access.user.name, batch_id)


@router.get("/{task_id}", response_model=TaskOut)
def read_mine(task_id: IdPath, access: Annotate, session: SessionDep) -> TaskOut:
    """One of your tasks, answered or not, with your answer (to change it while its batch
    is open). Another person's task is 404."""
    return TaskOut(**my_task(session, access.project, access.user.name, task_id).to_dict())


@router.post("/{task_id}/annotations", response_model=AnnotationOut,
             status_code=status.HTTP_201_CREATED,
             responses={200: {"model": AnnotationOut,
                              "description": "A retry (same Idempotency-Key) or a changed "
                                             "answer"}})
def submit_annotation(task_id: IdPath, body: SubmitRequest, access: Annotate,
                      session: SessionDep, settings: SettingsDep, response: Response,
                      idempotency_key: Annotated[str | None, Header(
                          min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")] = None,
                      ) -> AnnotationOut:
    """Accept the pre-label, correct it, keep a draft or skip with a reason. Change it
    later by answering again (until the batch closes). The last answer of a batch runs its
    QA, as a job (``qa_job_id``: follow it at /jobs/{id}). With an Idempotency-Key, a
    retry returns the first result (200)."""
    answer = Answer(label=body.label, status=body.status, skip_reason=body.skip_reason,
                    seconds_spent=body.seconds_spent, idempotency_key=idempotency_key,
                    unsure=body.unsure)
    qa_jobs: list[int] = []

    def queue_qa(s: Session, batch: Batch) -> None:
        qa_jobs.append(submit_job(s, settings, JobKind.QA, by=access.user.name,
                                  project=access.project,
                                  params={"batch_id": batch.id}).id)

    done = submit_answer(session, task_id, access.user.name, answer=answer,
                         project=access.project, timeout_s=settings.assignment_timeout_s,
                         qa=queue_qa)
    if not done.created:
        response.status_code = status.HTTP_200_OK
    if not done.replayed:
        audit.record(session, access.user.name, AuditAction.ANSWER,
                     project_id=access.project.id, target=f"task {task_id}",
                     status=done.annotation.status.value, label=done.annotation.label)
    out = AnnotationOut.model_validate(done.annotation)
    out.qa_job_id = qa_jobs[0] if qa_jobs else None
    return out
