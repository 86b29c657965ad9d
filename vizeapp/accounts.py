"""Sign-up and API keys; sign-in, sign-out and password change are Django's own views
(password change with the form below)."""

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import PasswordChangeForm, UserCreationForm
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_POST

from tasks.models import ApiKey


class SignUpForm(UserCreationForm):
    """Django's, with why a new password is too weak under the password, where a person
    looks for it, rather than under its confirmation (a mismatch stays there)."""

    def validate_password_for_user(self, user, *_field_name):
        super().validate_password_for_user(user, "password1")


class NewPasswordForm(PasswordChangeForm):
    """Django's, with why the new password is too weak under it, as on signing up."""

    def validate_password_for_user(self, user, *_field_name):
        super().validate_password_for_user(user, "new_password1")


@login_not_required
def signup(request):
    if request.user.is_authenticated:
        return redirect("tasks:list")
    form = SignUpForm(request.POST or None)
    if form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("tasks:list")
    return render(request, "registration/signup.html", {"form": form})


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label=gettext_lazy("Name"),
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("e.g. Camera script")}),
        help_text=gettext_lazy("A name that tells you later what uses this key."),
    )


def api_keys(request):
    """Make, list and revoke API keys. A new key's secret is shown on this one answer
    and never again: only its hash is stored."""
    form = ApiKeyForm(request.POST or None)
    secret = None
    if form.is_valid():
        _, secret = ApiKey.issue(request.user, form.cleaned_data["name"])
        form = ApiKeyForm()
    keys = request.user.api_keys.all()
    response = render(
        request,
        "registration/api_keys.html",
        {
            "form": form,
            "keys": keys,
            "secret": secret,
            "api_root": request.build_absolute_uri("/api/v1/"),
        },
    )
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


@require_POST
def api_key_revoke(request, key_id):
    key = get_object_or_404(ApiKey, pk=key_id, owner=request.user)
    key.revoke()
    messages.success(
        request,
        gettext("Revoked the key “%(name)s”; code using it is refused from now on.")
        % {"name": key.name},
    )
    return redirect("api_keys")
