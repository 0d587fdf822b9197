"""The bulk push writes the same RQ job as RQ's own enqueue, and bulk creation returns the rows it wrote."""

from __future__ import annotations

import zlib

import pytest
from django.db import transaction
from django.forms.models import model_to_dict
from rq.job import Job
from rq.serializers import JSONSerializer

from kbmanager.queues import get_queue, get_redis
from tasks.models import Task
from tasks.services import TaskSpec, _create_job, tasks_create_bulk

pytestmark = pytest.mark.django_db(transaction=True)

# Set per enqueue, so they differ between any two jobs.
TIMESTAMP_FIELDS = {b"created_at", b"enqueued_at"}


def _fields_without_ids(job_id: str) -> dict[bytes, bytes]:
    fields = get_redis().hgetall(Job.key_for(job_id))
    fields[b"data"] = zlib.decompress(fields[b"data"]).replace(job_id.encode(), b"<id>")
    fields[b"description"] = fields[b"description"].replace(job_id.encode(), b"<id>")
    return {name: value for name, value in fields.items() if name not in TIMESTAMP_FIELDS}


@pytest.mark.parametrize("queue_name", ["default", "parsing"])
def test_bulk_push_writes_the_job_rq_itself_would_write(queue_name):
    (task,) = tasks_create_bulk(specs=[TaskSpec(kind="tests.echo", queue=queue_name)])
    queue = get_queue(queue_name)
    reference_id = "11111111-2222-3333-4444-555555555555"
    queue.enqueue_job(_create_job(queue, reference_id))

    assert _fields_without_ids(str(task.id)) == _fields_without_ids(reference_id)
    assert set(get_redis().hkeys(Job.key_for(str(task.id)))) == set(get_redis().hkeys(Job.key_for(reference_id)))
    assert queue.job_ids == [str(task.id), reference_id]
    job = Job.fetch(str(task.id), connection=get_redis(), serializer=JSONSerializer)
    assert (job.func_name, job.args, job.origin, job.get_status()) == (
        "tasks.runner.run_task",
        [str(task.id)],
        queue_name,
        "queued",
    )


def test_bulk_push_of_many_tasks_queues_each_once_in_creation_order():
    tasks = tasks_create_bulk(specs=[TaskSpec(kind="tests.echo", args={"i": i}) for i in range(2_500)])
    assert get_queue("default").job_ids == [str(task.id) for task in tasks]


def test_bulk_create_returns_the_rows_it_wrote():
    specs = [
        TaskSpec(kind="tests.echo", args={"i": 1}),
        TaskSpec(kind="tests.echo", args={"nested": {"a": [1, 2]}}, queue="ai", max_retries=7),
    ]
    # Compared before the commit moves them on to queued.
    with transaction.atomic():
        created = tasks_create_bulk(specs=specs)
        for task in created:
            stored = Task.objects.get(id=task.id)
            assert model_to_dict(task) == model_to_dict(stored)
            assert (task.created_at, task._state.adding, task._state.db) == (stored.created_at, False, "default")
    assert created[1].max_retries == 7
    assert created[0].max_retries == Task._meta.get_field("max_retries").get_default()
