import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import reverse


@pytest.fixture
def signed_up(client, db):
    return client.post(
        reverse("signup"),
        {
            "username": "ada",
            "password1": "analytical engine 1843",
            "password2": "analytical engine 1843",
        },
    )


def test_it_signs_up_and_signs_in(client, signed_up):
    assert signed_up.status_code == 302
    assert signed_up.url == reverse("tasks:list")
    assert client.get(reverse("tasks:list")).context["user"].username == "ada"


def test_it_refuses_mismatched_passwords(client, db):
    response = client.post(
        reverse("signup"),
        {"username": "ada", "password1": "analytical engine 1843", "password2": "other"},
    )
    assert response.status_code == 200
    assert "The two password fields didn’t match." in response.content.decode()
    assert not User.objects.exists()


def test_it_signs_in_with_the_right_password(client, owner):
    response = client.post(
        reverse("login"), {"username": "owner", "password": "a long owner passphrase"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_signing_in_gives_a_new_session_key(client, owner):
    client.get(reverse("login"))
    client.session.save()
    before = client.session.session_key
    client.post(reverse("login"), {"username": "owner", "password": "a long owner passphrase"})
    assert client.session.session_key != before
    assert not SessionStore().exists(before)


def test_a_session_cookie_is_useless_after_signing_out(owner_client):
    cookie = owner_client.cookies[settings.SESSION_COOKIE_NAME].value
    owner_client.post(reverse("logout"))
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = cookie
    assert replay.get(reverse("api_keys")).status_code == 302
    assert not SessionStore().exists(cookie)


def test_it_signs_out_by_post_only(owner_client):
    assert owner_client.get(reverse("logout")).status_code == 405
    assert owner_client.post(reverse("logout")).status_code == 302
    assert owner_client.get(reverse("api_keys")).status_code == 302


def test_it_changes_the_password(owner_client, owner):
    response = owner_client.post(
        reverse("password_change"),
        {
            "old_password": "a long owner passphrase",
            "new_password1": "a brand new passphrase",
            "new_password2": "a brand new passphrase",
        },
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("a brand new passphrase")


def test_it_locks_out_sign_in_after_five_wrong_passwords(client, owner):
    for _ in range(5):
        client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    response = client.post(
        reverse("login"), {"username": "owner", "password": "a long owner passphrase"}
    )
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("url", ["/accounts/api-keys/", "/accounts/password/"])
def test_pages_need_a_signed_in_user(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_signed_out_the_front_page_says_what_vizeapp_does(client, db):
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Teach a computer to sort your photos." in html
    assert f'href="{reverse("signup")}"' in html
    assert f'href="{reverse("login")}"' in html


def test_signed_out_the_front_page_shows_no_tasks(client, task):
    assert "Ants or bees" not in client.get("/").content.decode()


def test_a_too_weak_password_is_faulted_under_the_password_on_signing_up(client, db):
    response = client.post(
        reverse("signup"), {"username": "ada", "password1": "12345", "password2": "12345"}
    )
    errors = response.context["form"].errors
    assert (
        "This password is too short. It must contain at least 8 characters." in errors["password1"]
    )
    assert "password2" not in errors


def test_mismatched_passwords_are_faulted_under_the_confirmation(client, db):
    response = client.post(
        reverse("signup"),
        {"username": "ada", "password1": "analytical engine 1843", "password2": "other"},
    )
    assert list(response.context["form"].errors) == ["password2"]


def test_a_too_weak_new_password_is_faulted_under_it(owner_client):
    response = owner_client.post(
        reverse("password_change"),
        {
            "old_password": "a long owner passphrase",
            "new_password1": "12345678",
            "new_password2": "12345678",
        },
    )
    errors = response.context["form"].errors
    assert "This password is entirely numeric." in errors["new_password1"]
    assert "new_password2" not in errors
