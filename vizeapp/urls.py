from django.contrib.auth import views as auth_views
from django.urls import include, path

from tasks import api, watson
from vizeapp import accounts, languages

urlpatterns = [
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(form_class=accounts.NewPasswordForm),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/api-keys/", accounts.api_keys, name="api_keys"),
    path("accounts/api-keys/<int:key_id>/revoke/", accounts.api_key_revoke, name="api_key_revoke"),
    path("language/", languages.switch_language, name="set_language"),
    path("jsi18n/", languages.javascript_catalog, name="javascript_catalog"),
    path("api/v1/", api.urls()),
    path("visual-recognition/api/v3/classifiers", watson.classifiers, name="watson_classifiers"),
    path(
        "visual-recognition/api/v3/classifiers/<str:classifier_id>",
        watson.classifier,
        name="watson_classifier",
    ),
    path(
        "visual-recognition/api/v3/classifiers/<str:classifier_id>/core_ml_model",
        watson.core_ml_model,
        name="watson_core_ml_model",
    ),
    path("visual-recognition/api/v3/classify", watson.classify, name="watson_classify"),
    path("", include("tasks.urls")),
]
