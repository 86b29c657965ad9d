"""API keys: made on the account page or by manage.py, stored as a hash, sent as a
Bearer token or as HTTP Basic with the user apikey, refused once revoked."""

import base64
import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tasks.models import ApiKey

TASKS = "/api/v1/tasks"


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_only_the_hash_of_a_key_is_stored(owner):
    key, secret = ApiKey.issue(owner, "camera")
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert secret not in [str(value) for value in stored.values()]
    assert stored["digest"] == ApiKey.digest_of(secret)


def test_a_bearer_key_authenticates(api_key):
    response = Client().get(TASKS, HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert response.status_code == 200


def test_basic_auth_with_the_user_apikey_authenticates(api_key):
    response = Client().get(TASKS, HTTP_AUTHORIZATION=basic("apikey", api_key))
    assert response.status_code == 200


def test_basic_auth_with_another_user_name_is_refused(api_key):
    response = Client().get(TASKS, HTTP_AUTHORIZATION=basic("owner", api_key))
    assert response.status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer vize_wrong", "Bearer ", "Token abc", "Basic !!"])
def test_a_missing_or_wrong_key_gets_401_with_a_json_reason(db, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = Client().get(TASKS, **extra)
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]
    assert "Bearer" in response["WWW-Authenticate"]


def test_a_signed_in_session_is_not_a_key(owner_client):
    assert owner_client.get(TASKS).status_code == 401


def test_a_revoked_key_is_refused(owner, api_key):
    ApiKey.objects.get(owner=owner).revoke()
    assert Client().get(TASKS, HTTP_AUTHORIZATION=f"Bearer {api_key}").status_code == 401


def test_a_key_of_a_deactivated_user_is_refused(owner, api_key):
    owner.is_active = False
    owner.save()
    assert Client().get(TASKS, HTTP_AUTHORIZATION=f"Bearer {api_key}").status_code == 401


def test_use_is_recorded(owner, api):
    api.get(TASKS)
    assert ApiKey.objects.get(owner=owner).last_used is not None


def test_the_page_shows_a_new_key_once(owner_client, owner):
    response = owner_client.post(reverse("api_keys"), {"name": "camera"})
    key = ApiKey.objects.get(owner=owner)
    secret = response.context["secret"]
    assert secret.startswith(key.start)
    assert secret in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    again = owner_client.get(reverse("api_keys")).content.decode()
    assert "camera" in again
    assert secret not in again


def test_the_page_revokes_a_key(owner_client, owner, api_key):
    key = ApiKey.objects.get(owner=owner)
    owner_client.post(reverse("api_key_revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked is not None
    assert Client().get(TASKS, HTTP_AUTHORIZATION=f"Bearer {api_key}").status_code == 401


def test_an_outsider_cannot_revoke_someone_elses_key(outsider_client, owner, api_key):
    key = ApiKey.objects.get(owner=owner)
    response = outsider_client.post(reverse("api_key_revoke", args=[key.pk]))
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked is None


def test_the_page_lists_only_ones_own_keys(outsider_client, api_key):
    response = outsider_client.get(reverse("api_keys"))
    assert list(response.context["keys"]) == []
    assert "No keys yet." in response.content.decode()


def test_the_command_prints_a_working_key(owner):
    out = io.StringIO()
    call_command("create_api_key", "owner", stdout=out)
    secret = out.getvalue().strip()
    assert Client().get(TASKS, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_making_a_key_needs_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(reverse("api_keys"), {"name": "forged"}).status_code == 403
    assert not ApiKey.objects.exists()
