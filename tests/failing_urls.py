"""The site's URLs plus one view that fails, for the error page tests."""

from django.urls import path

from vizeapp.urls import urlpatterns as site


def fail(request):
    raise RuntimeError("secret detail: /srv/vizeapp/var/db.sqlite3")


urlpatterns = [*site, path("fail/", fail)]
