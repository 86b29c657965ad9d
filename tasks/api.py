"""The JSON API under /api/v1/: everything a person does on the pages, from code, with
an API key. Each endpoint is a thin view over the same modules the pages use (imports,
runs, predictions); every lookup goes through the key's owner, so another user's
object is simply not found.

django-ninja builds the OpenAPI schema from the type hints and schemas
(tasks/api_schemas.py) that also validate the requests, and serves the docs page from
its own static files, so nothing is fetched from a CDN.
"""

from typing import Literal
from uuid import UUID

from django.core import exceptions
from django.db import transaction
from django.db.models import F
from django.http import Http404
from ninja import File, Form, NinjaAPI, Query, Schema, Status, UploadedFile
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import HttpBasicAuth, HttpBearer

from tasks import datasets, downloads, imports, keeping, predictions, runs, webhooks, zips
from tasks.api_schemas import (
    CategoryIn,
    CategoryName,
    CategoryOut,
    CategoryPatch,
    Classification,
    Deleted,
    DeliveryOut,
    Duplicates,
    Error,
    ImageOut,
    ImagePage,
    Kept,
    Move,
    Moved,
    OperatingPointIn,
    ReviewPage,
    RunIn,
    RunOut,
    Selection,
    ServedModelIn,
    TaskIn,
    TaskOut,
    TaskPatch,
    Text,
    UploadReport,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
)
from tasks.forms import CategoryForm
from tasks.models import (
    REVIEW_QUEUES,
    ApiKey,
    BadCursor,
    Category,
    Image,
    Task,
    TrainingRun,
)
from tasks.throttling import Throttled, classify_rate

UNAUTHORIZED = (
    "A valid API key is needed: send “Authorization: Bearer KEY”, or HTTP Basic with the "
    "user name apikey and the key as password. Keys are made on the API keys page."
)


def key_owner(request, secret):
    """The owner of the key, which stays on the request for the limits that count per key."""
    request.api_key = ApiKey.find(secret)
    return request.api_key.owner if request.api_key else None


class BearerKey(HttpBearer):
    def authenticate(self, request, token):
        return key_owner(request, token)


class BasicKey(HttpBasicAuth):
    def authenticate(self, request, username, password):
        return key_owner(request, password) if username == "apikey" else None


api = NinjaAPI(
    title="vizeapp",
    version="1",
    description=(
        "Custom image classification: tasks, categories, images, training runs, "
        "classification and model export. Authenticate with an API key."
    ),
    auth=[BearerKey(), BasicKey()],
    urls_namespace="api",
)


class ApiError(Exception):
    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def error(request, status, detail, **headers):
    response = api.create_response(request, {"detail": detail}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@api.exception_handler(ApiError)
def api_error(request, exc):
    return error(request, exc.status, exc.detail)


@api.exception_handler(Throttled)
def throttled(request, exc):
    return error(request, exc.status, exc.message, Retry_After=str(exc.retry_after))


@api.exception_handler(AuthenticationError)
def unauthorized(request, exc):
    return error(request, 401, UNAUTHORIZED, WWW_Authenticate='Bearer, Basic realm="vizeapp"')


@api.exception_handler(Http404)
def not_found(request, exc):
    return error(request, 404, str(exc) or "Not found.")


@api.exception_handler(ValidationError)
def invalid(request, exc):
    problems = [
        f"{'.'.join(str(part) for part in problem['loc'][1:]) or problem['loc'][0]}: "
        f"{problem['msg']}"
        for problem in exc.errors
    ]
    return error(request, 400, "; ".join(problems))


def urls():
    """The API's URL patterns, open to requests without a session: the key decides."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback.login_required = False
    return patterns, app_name, namespace


# Lookups through the key's owner, each of one unique code: get(), not first(), which
# would order the rows (the ordering's compiling was a sixth of a classify's own work).


def owned_task(request, code, get=None):
    """The key owner's task with this code, read by get (a queryset's get, or
    Task.answering): 404 if there is none."""
    get = get or Task.objects.select_related("active_run").get
    try:
        return get(code=code, owner=request.auth)
    except Task.DoesNotExist:
        raise Http404(f"You have no task {code}.") from None


def owned_category(task, code):
    try:
        return task.categories_with_counts().get(code=code)
    except Category.DoesNotExist:
        raise Http404(f"Task {task.code} has no category {code}.") from None


def owned_run(task, code, runs=None):
    try:
        return (task.runs if runs is None else runs).get(code=code)
    except TrainingRun.DoesNotExist:
        raise Http404(f"Task {task.code} has no run {code}.") from None


# Tasks


@api.get("/tasks", response=list[TaskOut], tags=["tasks"])
def list_tasks(request):
    return Task.objects.owned_by(request.auth).with_counts().select_related("active_run")


@api.post("/tasks", response={201: TaskOut, 400: Error}, tags=["tasks"])
def create_task(request, payload: TaskIn):
    names = [name.strip() for name in payload.categories if name.strip()]
    if len({name.lower() for name in names}) != len(names):
        raise ApiError(400, "categories: each name may appear only once (ignoring case).")
    with transaction.atomic():
        task = Task.objects.create(owner=request.auth, name=payload.name.strip())
        for name in names:
            task.category_named(name)
    return Status(201, owned_task(request, task.code, Task.objects.with_counts().get))


@api.get("/tasks/{uuid:task}", response={200: TaskOut, 404: Error}, tags=["tasks"])
def read_task(request, task: UUID):
    return owned_task(request, task, Task.objects.with_counts().get)


@api.patch("/tasks/{uuid:task}", response={200: TaskOut, 404: Error}, tags=["tasks"])
def rename_task(request, task: UUID, payload: TaskPatch):
    found = owned_task(request, task, Task.objects.with_counts().get)
    found.name = payload.name.strip()
    found.save(update_fields=["name", "updated"])
    return found


@api.delete("/tasks/{uuid:task}", response={204: None, 404: Error}, tags=["tasks"])
def delete_task(request, task: UUID):
    owned_task(request, task).delete_with_files()
    return Status(204, None)


# Categories


def saved_category(form):
    if not form.is_valid():
        raise ApiError(
            400,
            "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()),
        )
    category = form.save()
    return owned_category(form.task, category.code)


@api.get(
    "/tasks/{uuid:task}/categories",
    response={200: list[CategoryOut], 404: Error},
    tags=["categories"],
)
def list_categories(request, task: UUID):
    return owned_task(request, task).categories_with_counts()


@api.post(
    "/tasks/{uuid:task}/categories",
    response={201: CategoryOut, 400: Error, 404: Error},
    tags=["categories"],
)
def create_category(request, task: UUID, payload: CategoryIn):
    form = CategoryForm(payload.dict(), task=owned_task(request, task))
    return Status(201, saved_category(form))


@api.patch(
    "/tasks/{uuid:task}/categories/{uuid:category}",
    response={200: CategoryOut, 400: Error, 404: Error},
    tags=["categories"],
)
def change_category(request, task: UUID, category: UUID, payload: CategoryPatch):
    found_task = owned_task(request, task)
    found = owned_category(found_task, category)
    data = {"name": found.name, "is_negative": found.is_negative}
    data.update(payload.dict(exclude_none=True))
    return saved_category(CategoryForm(data, instance=found, task=found_task))


@api.delete(
    "/tasks/{uuid:task}/categories/{uuid:category}",
    response={204: None, 404: Error},
    tags=["categories"],
)
def delete_category(request, task: UUID, category: UUID):
    found = owned_task(request, task)
    owned_category(found, category).delete()
    runs.suggest_in_background(found.pk)
    return Status(204, None)


# Images


class ImageFilter(Schema):
    category: CategoryName | None = None
    unsorted: bool = False
    limit: int = 100
    after: Text | None = None


@api.get(
    "/tasks/{uuid:task}/images", response={200: ImagePage, 400: Error, 404: Error}, tags=["images"]
)
def list_images(request, task: UUID, filters: Query[ImageFilter]):
    """Newest first, `limit` (1 to 500) per page; `category` (a name) or `unsorted`
    narrow the list."""
    found = owned_task(request, task)
    if not 1 <= filters.limit <= 500:
        raise ApiError(400, "limit: between 1 and 500.")
    images = found.images.select_related("category", "suggestion")
    if filters.unsorted:
        images = images.filter(category=None)
    elif filters.category is not None:
        images = images.filter(category=named_category(found, filters.category))
    try:
        page, next_cursor = images.page(filters.after, filters.limit)
    except BadCursor:
        raise ApiError(400, "after: not a cursor this API gave out.") from None
    return {"count": images.count(), "images": page, "next": next_cursor}


def named_category(task, name):
    category = task.categories.filter(name__iexact=name.strip()).first()
    if category is None:
        raise Http404(f"Task {task.code} has no category named “{name}”.")
    return category


@api.post(
    "/tasks/{uuid:task}/images",
    response={200: UploadReport, 201: UploadReport, 400: Error, 404: Error},
    tags=["images"],
)
def upload_images(
    request,
    task: UUID,
    files: list[UploadedFile] = File(..., description="Images and zip archives of images."),
    category: CategoryName | None = Form(
        None, description="The category's name, created if new; none means Unsorted."
    ),
    folders_as_categories: bool = Form(
        False, description="Zip folders name the categories of their images."
    ),
):
    """Each file gets a line in the answer: added, duplicate (already in the task) or
    rejected with the reason. A bad file never stops the others. 201 when any was added."""
    found = owned_task(request, task)
    target = found.category_named(category) if category and category.strip() else None
    report = imports.import_files(
        found, files, category=target, folders_as_categories=folders_as_categories
    )
    if report.added:
        runs.embed_in_background(found)
    return Status(201 if report.added else 200, report)


@api.post(
    "/tasks/{uuid:task}/images/move",
    response={200: Moved, 400: Error, 404: Error},
    tags=["images"],
)
def move_images(request, task: UUID, payload: Move):
    found = owned_task(request, task)
    destination = named_category(found, payload.category) if payload.category else None
    selected, not_found = chosen_images(found, payload.images)
    moved = selected.move_to(destination)
    runs.suggest_in_background(found.pk)
    return {"moved": moved, "not_found": not_found}


def chosen_images(task, codes):
    """(the task's images with these codes, the codes that name none of them)."""
    selected = task.images.filter(code__in=codes)
    known = set(selected.values_list("code", flat=True))
    return selected, [code for code in codes if code not in known]


@api.post(
    "/tasks/{uuid:task}/images/delete",
    response={200: Deleted, 400: Error, 404: Error},
    tags=["images"],
)
def delete_images(request, task: UUID, payload: Selection):
    found = owned_task(request, task)
    selected, not_found = chosen_images(found, payload.images)
    deleted = selected.discard()
    runs.suggest_in_background(found.pk)
    return {"deleted": deleted, "not_found": not_found}


@api.post(
    "/tasks/{uuid:task}/images/keep",
    response={200: Kept, 400: Error, 404: Error},
    tags=["review"],
)
def keep_images(request, task: UUID, payload: Selection):
    """Keep these photos as they are: the mislabel and outlier queues hold them no more."""
    selected, not_found = chosen_images(owned_task(request, task), payload.images)
    return {"kept": selected.keep_as_they_are(), "not_found": not_found}


class Paging(Schema):
    limit: int = 100
    after: Text | None = None


@api.get(
    "/tasks/{uuid:task}/review/{queue}",
    response={200: ReviewPage, 400: Error, 404: Error},
    tags=["review"],
)
def review_queue(request, task: UUID, queue: str, paging: Query[Paging]):
    """The photos a person should look at, most suspicious first, `limit` (1 to 500) per
    page: `mislabels` (labelled photos that a head fitted without them puts in another
    category), `unsure` (Unsorted photos whose suggestion barely leads the next
    category), `outliers` (photos far from every category's photos). Fix one by moving
    it (`images/move`), or keep it as it is (`images/keep`)."""
    found = owned_task(request, task)
    if queue not in REVIEW_QUEUES:
        raise Http404(f"No review queue named “{queue}”: {', '.join(REVIEW_QUEUES)}.")
    if not 1 <= paging.limit <= 500:
        raise ApiError(400, "limit: between 1 and 500.")
    chosen = REVIEW_QUEUES[queue]
    images = (
        found.images.select_related("category", "suggestion")
        .in_review(chosen)
        .annotate(score=F(chosen.rank))
    )
    try:
        page, next_cursor = images.page_ranked(
            paging.after, paging.limit, chosen.rank, chosen.ascending
        )
    except BadCursor:
        raise ApiError(400, "after: not a cursor this API gave out.") from None
    return {"count": images.count(), "items": page, "next": next_cursor}


@api.get("/tasks/{uuid:task}/duplicates", response={200: Duplicates, 404: Error}, tags=["images"])
def list_duplicates(request, task: UUID):
    """Groups of near-copies (resized, re-encoded, slightly cropped, mirrored) of two
    images or more, those whose images sit in different categories first."""
    return {"groups": owned_task(request, task).duplicate_groups()}


@api.get(
    "/tasks/{uuid:task}/images/{uuid:image}", response={200: ImageOut, 404: Error}, tags=["images"]
)
def read_image(request, task: UUID, image: UUID):
    found = (
        owned_task(request, task)
        .images.select_related("category", "suggestion")
        .filter(code=image)
        .first()
    )
    if found is None:
        raise Http404(f"Task {task} has no image {image}.")
    return found


@api.get(
    "/tasks/{uuid:task}/images/{uuid:image}/file",
    response={200: None, 404: Error},
    tags=["images"],
    openapi_extra={"responses": {200: {"description": "The original file, as uploaded."}}},
)
def download_image(request, task: UUID, image: UUID):
    try:
        found = owned_task(request, task).images.get(code=image)
    except Image.DoesNotExist:
        raise Http404(f"Task {task} has no image {image}.") from None
    return downloads.original(found, as_attachment=True)


# Training


@api.get("/tasks/{uuid:task}/runs", response={200: list[RunOut], 404: Error}, tags=["training"])
def list_runs(request, task: UUID):
    found = owned_task(request, task)
    found_runs = list(found.runs.select_related("task"))
    runs.reconcile(found_runs)
    return found_runs


@api.post(
    "/tasks/{uuid:task}/runs",
    response={200: RunOut, 201: RunOut, 400: Error, 404: Error, 409: Error, 503: Error},
    tags=["training"],
)
def start_run(request, task: UUID, payload: RunIn):
    """Queue a training run: 201 with the new run. While a run of the task is still
    queued, that run takes in the images added since (200 with it); once it is training,
    409."""
    found = owned_task(request, task)
    try:
        run, started = runs.start(found, payload.base_model, payload.mode, payload.time_budget)
    except runs.TrainingRefused as refusal:
        raise ApiError(400, str(refusal)) from None
    except runs.QueueUnavailable:
        raise ApiError(
            503, "The job queue is unavailable right now; training did not start."
        ) from None
    if started is runs.Started.BUSY:
        raise ApiError(409, f"Run {run.code} of this task is {run.status}; wait for it.")
    return Status(201 if started is runs.Started.NEW else 200, run)


@api.get(
    "/tasks/{uuid:task}/runs/{uuid:run}", response={200: RunOut, 404: Error}, tags=["training"]
)
def read_run(request, task: UUID, run: UUID):
    found = owned_run(owned_task(request, task), run)
    runs.reconcile([found])
    return found


@api.post(
    "/tasks/{uuid:task}/runs/{uuid:run}/cancel",
    response={200: RunOut, 404: Error, 409: Error},
    tags=["training"],
)
def cancel_run(request, task: UUID, run: UUID):
    found = owned_run(owned_task(request, task), run)
    if not runs.cancel(found):
        raise ApiError(409, f"Run {run} is {found.status}; only a queued or training run stops.")
    found.refresh_from_db()
    return found


@api.post(
    "/tasks/{uuid:task}/runs/{uuid:run}/activate",
    response={200: RunOut, 404: Error, 409: Error},
    tags=["training"],
)
def activate_run(request, task: UUID, run: UUID):
    found = owned_run(owned_task(request, task), run)
    if not found.activate():
        raise ApiError(409, f"Run {run} is {found.status}; only a ready run can answer.")
    return found


@api.put(
    "/tasks/{uuid:task}/runs/{uuid:run}/operating-point",
    response={200: RunOut, 400: Error, 404: Error, 409: Error},
    tags=["training"],
)
def choose_operating_point(request, task: UUID, run: UUID, payload: OperatingPointIn):
    """Below this top score, classify answers `"label": null, "needs_review": true` with
    the run's model, and so does the predict.py of its model zip, which is packaged
    again. The run's `metrics.operating_points` say what each threshold costs."""
    found = owned_run(owned_task(request, task), run)
    try:
        chosen = runs.choose_operating_point(found, payload.threshold)
    except exceptions.ValidationError as refusal:
        raise ApiError(400, refusal.messages[0]) from None
    if not chosen:
        raise ApiError(409, f"Run {run} is {found.status}; only a ready run answers.")
    return found


@api.put(
    "/tasks/{uuid:task}/runs/{uuid:run}/served-model",
    response={200: RunOut, 400: Error, 404: Error, 409: Error},
    tags=["training"],
)
def choose_served_model(request, task: UUID, run: UUID, payload: ServedModelIn):
    """Whether classify answers with the run's int8 model (offered in `formats` when it
    gave model.onnx's top category for at least 99 % of the held-out photos) or with
    model.onnx; the predict.py of its model zip, packaged again, runs the same one."""
    found = owned_run(owned_task(request, task), run)
    if found.status != TrainingRun.Status.READY:
        raise ApiError(409, f"Run {run} is {found.status}; only a ready run answers.")
    if not runs.choose_served_model(found, payload.int8):
        raise ApiError(
            409,
            f"Run {run} offers no int8 model: its formats are not built yet, or the int8 "
            "model gave another top category than model.onnx for more than 1 % of photos.",
        )
    return found


# Classification


def refuse_unless_all_images(sent):
    """The API classifies all the files sent or none: the first refused file names the
    reason, with 413 when some file was over a limit (its size, or one too many) and 415
    otherwise."""
    refused = [file for file in sent if file.image is None]
    if refused:
        status = 413 if any(file.over_limit for file in refused) else 415
        raise ApiError(status, f"{refused[0].name}: {refused[0].reason}")
    if not sent:
        raise ApiError(400, "files: no image among the files sent.")


def answer_run(task, code):
    if code is None:
        if task.active_run is None:
            raise ApiError(409, "This task has no trained model yet: train it first.")
        return task.active_run
    return ready_run(task, code)


def ready_run(task, code):
    run = owned_run(task, code, task.runs.answering())
    if run.status != TrainingRun.Status.READY:
        raise ApiError(409, f"Run {code} is {run.status}; only a ready run has a model.")
    return run


@api.post(
    "/tasks/{uuid:task}/classify",
    response={
        200: Classification,
        **dict.fromkeys((400, 404, 409, 413, 415, 429, 503), Error),
    },
    tags=["classify"],
)
def classify(
    request,
    task: UUID,
    files: list[UploadedFile] = File(..., description="Images and zip archives of images."),
    threshold: float = Form(
        0.0, ge=0, le=1, description="Leave out scores below this; no label below it."
    ),
    run: UUID | None = Form(None, description="A ready run; the active model by default."),
    keep: Literal[keeping.KEEP_CHOICES] = Form(
        keeping.NOTHING,
        description="Store photos in the task's Unsorted, with the answer as their "
        "suggestion, for a person to label: `unsure` those that need review or whose best "
        "category barely leads the next, `all` every one; `none` (the default) stores "
        "nothing. At most VIZE_KEEP_PER_DAY a day per task; kept photos still Unsorted "
        "after VIZE_KEEP_DAYS are deleted.",
    ),
):
    """Every category's score for each image, best first, the top label, and the run
    that answered. Nothing is stored unless `keep` asks."""
    with classify_rate.counting(request.api_key):
        found = owned_task(request, task, Task.answering)
        answering = answer_run(found, run)
    answers = predictions.classify_files(files, [answering], check=refuse_unless_all_images)
    kept = keeping.keep(found, answers, keep)
    return classification(
        request,
        [
            classified(answer.sent.name, answer.predictions[0], answering.code, threshold, outcome)
            for answer, outcome in zip(answers, kept, strict=True)
        ],
    )


def classification(request, images):
    """The answer of a classify, as Classification documents it, rendered as built:
    django-ninja's validation of it would check what `classified` already guarantees
    (tests hold it to the schema), at 0.15 ms a photo of two categories after its
    inference, more with more categories."""
    return api.create_response(request, {"images": images}, status=200)


def classified(name, prediction, run_code, threshold, outcome=None):
    """One image's answer; outcome is what keeping did with it, where classify asked.
    The codes are strings already: the renderer's encoder would convert them in Python."""
    scores = [{"category": c, "score": s} for c, s in prediction.scores if s >= threshold]
    label = prediction.label if scores and scores[0]["category"] == prediction.label else None
    image = outcome and outcome.image
    return {
        "name": name,
        "label": label,
        "needs_review": prediction.needs_review,
        "scores": scores,
        "run": run_code and str(run_code),
        "kept": image and str(image.code),
        "not_kept": (outcome and outcome.refusal) or None,
    }


@api.post(
    "/classify/general",
    response={200: Classification, **dict.fromkeys((400, 413, 415, 429, 503), Error)},
    tags=["classify"],
)
def classify_general(
    request,
    files: list[UploadedFile] = File(..., description="Images and zip archives of images."),
    top: int = Form(5, ge=1, le=1000, description="How many ImageNet classes to list."),
):
    """The built-in ImageNet classifier: 1,000 everyday classes, no training needed."""
    classify_rate.check(request.api_key)
    answers = predictions.classify_files(files, [None], top=top, check=refuse_unless_all_images)
    return classification(
        request,
        [classified(answer.sent.name, answer.predictions[0], None, 0.0) for answer in answers],
    )


# Export


EXPORT_RESPONSES = {
    200: {
        "description": "The model zip: model.onnx, labels.json, preprocess.json, "
        "model_card.md, predict.py, model.torchscript.pt.",
        "content": {"application/zip": {}},
    },
    202: {"description": "Being packaged; try again after Retry-After seconds."},
    503: {"description": "The packaging failed (the detail says why); POST to try again."},
}


@api.get(
    "/tasks/{uuid:task}/export",
    response={200: None, 202: Error, 404: Error, 409: Error, 503: Error},
    tags=["export"],
    openapi_extra={"responses": EXPORT_RESPONSES},
)
def export(request, task: UUID, run: UUID | None = None):
    """The model zip of the active run, or of `run`."""
    return model_zip(request, answer_run(owned_task(request, task), run))


@api.post(
    "/tasks/{uuid:task}/export",
    response={200: None, 202: Error, 404: Error, 409: Error, 503: Error},
    tags=["export"],
    openapi_extra={"responses": EXPORT_RESPONSES},
)
def export_again(request, task: UUID, run: UUID | None = None):
    """The same as GET, but a packaging that failed is tried again."""
    return model_zip(request, answer_run(owned_task(request, task), run), retry=True)


def model_zip(request, chosen, retry=False):
    return built_zip(request, runs.ModelZip(chosen), retry)


def built_zip(request, built, retry=False):
    """The zip (tasks/zips.py), 202 while a job builds it, or 503 saying why it failed."""
    state = zips.ask(built, retry=retry)
    if state is zips.Built.FAILED:
        return error(request, 503, f"{built.failure} POST to this URL to try again.")
    if state is zips.Built.BUILDING:
        return error(
            request,
            202,
            f"The {built.what} is being {built.making}; try again in a few seconds.",
            Retry_After="5",
        )
    return built.download()


# Webhooks


def owned_webhook(task, code):
    hook = task.webhooks.filter(code=code).first()
    if hook is None:
        raise Http404(f"Task {task.code} has no webhook {code}.")
    return hook


@api.get(
    "/tasks/{uuid:task}/webhooks",
    response={200: list[WebhookOut], 404: Error},
    tags=["webhooks"],
)
def list_webhooks(request, task: UUID):
    return owned_task(request, task).webhooks.all()


@api.post(
    "/tasks/{uuid:task}/webhooks",
    response={201: WebhookCreated, 400: Error, 404: Error, 409: Error},
    tags=["webhooks"],
)
def create_webhook(request, task: UUID, payload: WebhookIn):
    """Call `url` when a run of the task is ready or fails. The answer holds the secret
    that signs the calls, once: it is never shown again."""
    found = owned_task(request, task)
    try:
        hook = webhooks.add(found, payload.url, request.build_absolute_uri("/"))
    except webhooks.TooManyWebhooks as refusal:
        raise ApiError(409, str(refusal)) from None
    except webhooks.WebhookRefused as refusal:
        raise ApiError(400, f"url: {refusal}") from None
    return Status(201, hook)


@api.delete(
    "/tasks/{uuid:task}/webhooks/{uuid:webhook}",
    response={204: None, 404: Error},
    tags=["webhooks"],
)
def delete_webhook(request, task: UUID, webhook: UUID):
    owned_webhook(owned_task(request, task), webhook).delete()
    return Status(204, None)


@api.get(
    "/tasks/{uuid:task}/webhooks/{uuid:webhook}/deliveries",
    response={200: list[DeliveryOut], 404: Error},
    tags=["webhooks"],
)
def list_deliveries(request, task: UUID, webhook: UUID):
    """The hook's last calls, newest first: each attempt's HTTP status or what went wrong."""
    return owned_webhook(owned_task(request, task), webhook).deliveries.all()


# Dataset


DATASET_RESPONSES = {
    200: {
        "description": "The dataset zip: labels.csv (file, sha256, category, negative, "
        "split, prediction, score), a folder per category with its photos as uploaded, "
        "and the Unsorted photos at the top.",
        "content": {"application/zip": {}},
    },
    202: {"description": "Being built; try again after Retry-After seconds."},
    503: {"description": "The build failed (the detail says why); POST to try again."},
}


@api.get(
    "/tasks/{uuid:task}/dataset",
    response={200: None, 202: Error, 404: Error, 409: Error, 503: Error},
    tags=["export"],
    openapi_extra={"responses": DATASET_RESPONSES},
)
def dataset(request, task: UUID, run: UUID | None = None):
    """The task's photos and labels as a zip to train elsewhere, or to drop on a new
    task (folders as categories) to recreate it. labels.csv gives the split, prediction
    and score of `run`, the active run by default. A change to the photos or their
    categories builds it again."""
    found = owned_task(request, task)
    return built_zip(request, datasets.current(found, dataset_run(found, run)))


@api.post(
    "/tasks/{uuid:task}/dataset",
    response={200: None, 202: Error, 404: Error, 409: Error, 503: Error},
    tags=["export"],
    openapi_extra={"responses": DATASET_RESPONSES},
)
def dataset_again(request, task: UUID, run: UUID | None = None):
    """The same as GET, but a build that failed is tried again."""
    found = owned_task(request, task)
    return built_zip(request, datasets.current(found, dataset_run(found, run)), retry=True)


def dataset_run(task, code):
    return task.active_run if code is None else ready_run(task, code)
