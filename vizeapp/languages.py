"""The languages of the pages: English, French and Simplified Chinese.

A page answers in the language of the switch (Django's set_language cookie), else the
browser's Accept-Language, else English. The JSON APIs answer in English whatever the
caller's language: their texts are read by code, and their schema documents English.
"""

from django.contrib.auth.decorators import login_not_required
from django.middleware.locale import LocaleMiddleware
from django.utils import translation
from django.views.i18n import JavaScriptCatalog, set_language

# The paths of /api/v1 (tasks/api.py) and of the Watson API (tasks/watson.py).
ENGLISH_ONLY_PREFIXES = ("/api/", "/visual-recognition/")


def english_only(path):
    return path.startswith(ENGLISH_ONLY_PREFIXES)


class PageLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware, except that the APIs always answer in English."""

    def process_request(self, request):
        if not english_only(request.path_info):
            return super().process_request(request)
        translation.activate("en")
        request.LANGUAGE_CODE = "en"

    def process_response(self, request, response):
        if english_only(request.path_info):
            response.headers.setdefault("Content-Language", "en")
            return response
        return super().process_response(request, response)


# The switch and the JavaScript catalogue serve the signed-out pages too.
switch_language = login_not_required(set_language)
javascript_catalog = login_not_required(JavaScriptCatalog.as_view())
