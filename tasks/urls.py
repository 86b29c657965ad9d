from django.urls import path

from tasks import views

app_name = "tasks"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("tasks/<uuid:task_code>/", views.task_detail, name="detail"),
    path("tasks/<uuid:task_code>/rename/", views.task_rename, name="rename"),
    path("tasks/<uuid:task_code>/delete/", views.task_delete, name="delete"),
    path("tasks/<uuid:task_code>/upload/", views.upload, name="upload"),
    path(
        "tasks/<uuid:task_code>/categories/new/",
        views.category_create,
        name="category_create",
    ),
    path(
        "tasks/<uuid:task_code>/categories/<uuid:category_code>/rename/",
        views.category_rename,
        name="category_rename",
    ),
    path(
        "tasks/<uuid:task_code>/categories/<uuid:category_code>/delete/",
        views.category_delete,
        name="category_delete",
    ),
    path("tasks/<uuid:task_code>/images/move/", views.images_move, name="images_move"),
    path("tasks/<uuid:task_code>/images/delete/", views.images_delete, name="images_delete"),
    path("tasks/<uuid:task_code>/images/keep/", views.images_keep, name="images_keep"),
    path("tasks/<uuid:task_code>/undo/", views.undo, name="undo"),
    path(
        "tasks/<uuid:task_code>/suggestions/accept/",
        views.suggestions_accept,
        name="suggestions_accept",
    ),
    path(
        "tasks/<uuid:task_code>/images/<uuid:image_code>/",
        views.image_detail,
        name="image_detail",
    ),
    path(
        "tasks/<uuid:task_code>/images/<uuid:image_code>/file/",
        views.image_file,
        name="image_file",
    ),
    path(
        "tasks/<uuid:task_code>/images/<uuid:image_code>/thumbnail/",
        views.image_thumbnail,
        name="image_thumbnail",
    ),
    path("tasks/<uuid:task_code>/duplicates/", views.duplicates, name="duplicates"),
    path("tasks/<uuid:task_code>/train/", views.train, name="train"),
    path("tasks/<uuid:task_code>/preview/", views.preview, name="preview"),
    path("tasks/<uuid:task_code>/dataset/", views.dataset, name="dataset"),
    path("tasks/<uuid:task_code>/preview/add/", views.preview_add, name="preview_add"),
    path("tasks/<uuid:task_code>/runs/<uuid:run_code>/", views.run_detail, name="run_detail"),
    path(
        "tasks/<uuid:task_code>/runs/<uuid:run_code>/cancel/",
        views.run_cancel,
        name="run_cancel",
    ),
    path(
        "tasks/<uuid:task_code>/runs/<uuid:run_code>/export/",
        views.run_export,
        name="run_export",
    ),
    path(
        "tasks/<uuid:task_code>/runs/<uuid:run_code>/operating-point/",
        views.run_operating_point,
        name="run_operating_point",
    ),
    path(
        "tasks/<uuid:task_code>/runs/<uuid:run_code>/served-model/",
        views.run_served_model,
        name="run_served_model",
    ),
    path(
        "tasks/<uuid:task_code>/runs/<uuid:run_code>/activate/",
        views.run_activate,
        name="run_activate",
    ),
    path("tasks/<uuid:task_code>/webhooks/", views.task_webhooks, name="webhooks"),
    path(
        "tasks/<uuid:task_code>/webhooks/<uuid:webhook_code>/remove/",
        views.task_webhook_remove,
        name="webhook_remove",
    ),
]
