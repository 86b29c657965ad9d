"""Sign-up; sign-in, sign-out and password change are Django's own views."""

from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render


@login_not_required
def signup(request):
    if request.user.is_authenticated:
        return redirect("tasks:list")
    form = UserCreationForm(request.POST or None)
    if form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("tasks:list")
    return render(request, "registration/signup.html", {"form": form})
