"""django-rq's dashboard on this site (/django-rq/): superusers only, since it can stop, delete and
requeue any job."""

from __future__ import annotations

import pytest

from tests.factories import StaffFactory, UserFactory


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True)


def test_rq_dashboard_is_open_to_superusers_only(client_for, queue, superuser):
    response = client_for(superuser).get("/django-rq/")
    assert response.status_code == 200
    assert "default" in response.content.decode()
    # It can stop, delete and requeue any job: more than any one task permission grants.
    every_task_permission = client_for(StaffFactory(permissions=["view_task", "cancel_task", "retry_task"]))
    assert every_task_permission.get("/django-rq/").status_code == 403
    assert every_task_permission.post("/django-rq/queues/0/empty/", {"post": "yes"}).status_code == 403


def test_rq_dashboard_redirects_non_staff_and_anonymous(user_client, client):
    for c in (user_client, client):
        response = c.get("/django-rq/")
        assert response.status_code == 302
        assert response["Location"] == "/admin/login/?next=/django-rq/"
