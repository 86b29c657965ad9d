"""Settings that refuse to start a site that would be unsafe."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage_check(tmp_path, *options, **environment):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(VIZE_VAR_DIR=str(tmp_path), **environment)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("weak", ["change-me", "django-insecure-" + "x" * 50, "ab" * 30])
def test_a_weak_secret_key_stops_the_site(tmp_path, weak):
    result = manage_check(tmp_path, SECRET_KEY=weak)
    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_a_strong_secret_key_is_accepted(tmp_path):
    result = manage_check(tmp_path, SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stderr


def test_the_deploy_check_passes_with_production_settings(tmp_path):
    result = manage_check(
        tmp_path,
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        HTTPS="1",
        ALLOWED_HOSTS="vize.example.com",
    )
    assert result.returncode == 0, result.stderr


def settings_of(tmp_path, expression, **environment):
    """The value of a settings expression in a fresh process with this environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(VIZE_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="vizeapp.settings", **environment)
    code = (
        f"import json; from django.conf import settings; print(json.dumps(settings.{expression}))"
    )
    printed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(printed)


def test_webhooks_call_no_network_of_the_sites_own_unless_told(tmp_path):
    assert settings_of(tmp_path, "VIZE_WEBHOOK_ALLOWED_NETWORKS") == []
    allowed = settings_of(
        tmp_path, "VIZE_WEBHOOK_ALLOWED_NETWORKS", VIZE_WEBHOOK_ALLOWED_NETWORKS="10.1.0.0/16, ::1"
    )
    assert allowed == ["10.1.0.0/16", "::1/128"]


def test_a_malformed_webhook_network_stops_the_site(tmp_path):
    result = manage_check(tmp_path, VIZE_WEBHOOK_ALLOWED_NETWORKS="10.1.0.0/33")
    assert result.returncode != 0
    assert "VIZE_WEBHOOK_ALLOWED_NETWORKS: " in result.stderr
