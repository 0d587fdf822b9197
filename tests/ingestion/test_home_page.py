"""The home page: login required, and the form, links table and script for a logged-in user."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.ingestion.conftest import LINK_PERMS, make_user

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_is_sent_to_the_admin_login_and_back(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/"


def test_a_user_with_link_permissions_gets_the_paste_box_the_upload_and_the_links_table(client):
    client.force_login(make_user(*LINK_PERMS))

    response = client.get("/")

    assert response.status_code == 200
    page = response.content.decode()
    assert '<textarea id="urls" name="urls"' in page
    assert '<input type="file" id="import-file" name="file"' in page
    assert 'id="links-table"' in page
    assert "/static/ingestion/home.js" in page
    # The script posts with the CSRF token from the cookie, so the page must set it.
    assert "csrftoken" in response.cookies


def test_the_admin_link_is_shown_to_staff_only(client):
    client.force_login(make_user(*LINK_PERMS))
    assert 'id="admin-link"' not in client.get("/").content.decode()

    client.force_login(User.objects.create_superuser("boss", password="pw"))
    page = client.get("/").content.decode()
    assert '<a href="/admin/" id="admin-link">' in page


def test_a_user_without_link_permissions_is_told_so_instead_of_getting_a_form_that_would_fail(client):
    client.force_login(make_user(username="nobody"))

    page = client.get("/").content.decode()

    assert 'id="submit-form"' not in page
    assert "may not add links" in page
    assert "may not view links" in page


def test_the_page_script_and_stylesheet_are_served_without_collectstatic(client):
    for path in ("/static/ingestion/home.js", "/static/ingestion/home.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content if response.streaming else [response.content])
