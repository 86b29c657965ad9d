from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from tasks import downloads, imports, predictions, runs, sidebar
from tasks.forms import (
    AcceptSuggestionsForm,
    CategoryForm,
    DuplicateGroupForm,
    MoveForm,
    OperatingPointForm,
    SelectionForm,
    ServedModelForm,
    TaskForm,
    TrainForm,
)
from tasks.imaging import BROWSER_FORMATS
from tasks.models import REVIEW_QUEUES, BadCursor, Category, ReviewQueue, Task, TrainingRun
from tasks.throttling import Throttled
from trainer.files import INT8_MODEL_FILE, MODEL_FILE


def owned_task(request, task_code):
    return get_object_or_404(Task, code=task_code, owner=request.user)


def task_list(request):
    form = TaskForm(request.POST or None)
    if form.is_valid():
        form.instance.owner = request.user
        task = form.save()
        return redirect(task)
    tasks = Task.objects.owned_by(request.user).with_counts().with_training()
    return render(request, "tasks/task_list.html", {"tasks": tasks, "form": form})


# The grid's order of Unsorted by the suggestion's score (?order=sure), newest first else.
MOST_SURE = "sure"


def task_detail(request, task_code):
    """The task page, or to htmx the one part it asks for, built alone: the infinite
    scroll asks for the grid's next page many times a visit."""
    task = owned_task(request, task_code)
    if request.htmx.target == "training":
        return render(request, "tasks/_training.html", {"task": task, **training_context(task)})
    view = sidebar_entry(task, request.GET.get("view", sidebar.ALL))
    context = {
        "task": task,
        "view": view,
        "view_key": sidebar.key(view),
        "review_queue": view if isinstance(view, ReviewQueue) else None,
    }
    if request.htmx.target == "sidebar":
        return render(request, "tasks/_sidebar.html", {**context, **sidebar_context(task)})
    cursor = request.GET.get("cursor")
    # Unsorted may show the photos whose suggestion is surest first, to accept them.
    most_sure = view == sidebar.UNSORTED and request.GET.get("order") == MOST_SURE
    shown = sidebar.images(task, view)
    try:
        images, next_cursor = sidebar.page(
            shown, view, cursor, settings.VIZE_GRID_PAGE_SIZE, most_sure
        )
    except BadCursor:
        return HttpResponseBadRequest("That page of the grid does not exist.")
    context.update(images=images, next_cursor=next_cursor, order=MOST_SURE if most_sure else "")
    if request.htmx.target == "grid":
        return render(request, "tasks/_grid.html", {**context, "categories": task.categories.all()})
    if request.htmx and cursor:  # the infinite scroll
        return render(request, "tasks/_grid_page.html", context)
    context.update(sidebar_context(task))
    context.update(training_context(task))
    context["duplicate_group_count"] = task.duplicate_group_count()
    return render(request, "tasks/task_detail.html", context)


def sidebar_entry(task, key):
    """The side-bar entry a key sent by a page names; 404 for none of them."""
    try:
        return sidebar.entry(task, key)
    except sidebar.UnknownEntry:
        raise Http404("No such category in this task.") from None


def sidebar_context(task):
    categories = list(task.categories_with_counts())
    unsorted_count = task.unsorted_count()
    waiting = task.review_counts()
    return {
        "categories": categories,
        "unsorted_count": unsorted_count,
        "image_count": unsorted_count + sum(category.image_count for category in categories),
        "review_queues": [
            (queue, waiting[key]) for key, queue in REVIEW_QUEUES.items() if waiting[key]
        ],
    }


@require_POST
def task_rename(request, task_code):
    task = owned_task(request, task_code)
    form = TaskForm(request.POST, instance=task)
    if form.is_valid():
        form.save()
    else:
        messages.error(request, "A task needs a name of at most 100 characters.")
    return redirect(task)


def task_delete(request, task_code):
    task = owned_task(request, task_code)
    if request.method == "POST":
        name = task.name
        task.delete_with_files()
        messages.success(request, f"Deleted the task “{name}” and all its images.")
        return redirect("tasks:list")
    return render(
        request,
        "tasks/task_delete.html",
        {"task": task, **sidebar_context(task)},
    )


@require_POST
def category_create(request, task_code):
    task = owned_task(request, task_code)
    form = CategoryForm(request.POST, task=task)
    if form.is_valid():
        category = form.save()
        messages.success(request, f"Added the category “{category.name}”.")
    else:
        messages.error(request, form_errors(form))
    return redirect(task)


@require_POST
def category_rename(request, task_code, category_code):
    task = owned_task(request, task_code)
    category = get_object_or_404(task.categories, code=category_code)
    form = CategoryForm(request.POST, instance=category, task=task)
    if form.is_valid():
        form.save()
    else:
        messages.error(request, form_errors(form))
    return redirect(task)


def form_errors(form):
    return " ".join(error for errors in form.errors.values() for error in errors)


@require_POST
def category_delete(request, task_code, category_code):
    task = owned_task(request, task_code)
    category = get_object_or_404(task.categories, code=category_code)
    moved = category.images.count()
    category.delete()
    runs.suggest_in_background(task.pk)
    messages.success(
        request,
        f"Deleted the category “{category.name}”; its {images_count(moved)} are in Unsorted.",
    )
    return redirect(task)


@require_POST
def upload(request, task_code):
    task = owned_task(request, task_code)
    target = sidebar_entry(task, request.POST.get("target", sidebar.UNSORTED))
    files = request.FILES.getlist("files")
    if not files:
        return HttpResponseBadRequest("Choose at least one photo or zip file to upload.")
    report = imports.import_files(
        task,
        files,
        category=target if isinstance(target, Category) else None,
        folders_as_categories=target == sidebar.ALL,
    )
    if report.added:
        runs.embed_in_background(task)
    if request.htmx:
        response = render(request, "tasks/_upload_report.html", {"report": report})
        return trigger_client_event(response, "uploaded", report.counts)
    messages.info(request, report_summary(report))
    for rejected in report.rejected[:20]:
        messages.warning(request, f"{rejected.name}: {rejected.reason}")
    for copy in report.near_duplicates[:20]:
        messages.info(request, f"{copy.name} {copy.copy_note}.")
    return redirect(task)


def report_summary(report):
    near = f" ({len(report.near_duplicates)} near-copies)" if report.near_duplicates else ""
    return (
        f"{len(report.added)} added{near}, {len(report.duplicates)} duplicates, "
        f"{len(report.rejected)} rejected."
    )


@require_POST
def images_move(request, task_code):
    task = owned_task(request, task_code)
    form = MoveForm(request.POST, task=task)
    if not form.is_valid():
        return selection_refused(request, task, form)
    codes = list(form.selected_images().values_list("code", flat=True))
    moved = form.save()
    runs.suggest_in_background(task.pk)
    destination = form.cleaned_data["category"]
    messages.success(request, f"Moved {images_count(moved)} to {destination or 'Unsorted'}.")
    view = sidebar_entry(task, request.POST.get("view", sidebar.ALL))
    leaving = [] if view == sidebar.ALL or view == destination else codes
    return after_selection_change(request, task, leaving)


@require_POST
def images_delete(request, task_code):
    task = owned_task(request, task_code)
    form = SelectionForm(request.POST, task=task)
    if not form.is_valid():
        return selection_refused(request, task, form)
    images = form.selected_images()
    codes = list(images.values_list("code", flat=True))
    deleted = images.delete_with_files()
    runs.suggest_in_background(task.pk)
    messages.success(request, f"Deleted {images_count(deleted)}.")
    return after_selection_change(request, task, codes)


@require_POST
def suggestions_accept(request, task_code):
    task = owned_task(request, task_code)
    form = AcceptSuggestionsForm(request.POST, task=task)
    if not form.is_valid():
        return selection_refused(request, task, form)
    accepted = form.save()
    runs.suggest_in_background(task.pk)
    if accepted:
        messages.success(request, f"Accepted the suggestions of {images_count(len(accepted))}.")
    else:
        messages.info(request, "No Unsorted photo has a suggestion that sure yet.")
    view = sidebar_entry(task, request.POST.get("view", sidebar.ALL))
    # Accepted photos leave every view but All: they move to another category.
    return after_selection_change(request, task, [] if view == sidebar.ALL else accepted)


@require_POST
def images_keep(request, task_code):
    task = owned_task(request, task_code)
    form = SelectionForm(request.POST, task=task)
    if not form.is_valid():
        return selection_refused(request, task, form)
    images = form.selected_images()
    codes = list(images.values_list("code", flat=True))
    kept = images.keep_as_they_are()
    as_it_is = "as it is" if kept == 1 else "as they are"
    messages.success(request, f"Kept {images_count(kept)} {as_it_is}: review will not ask again.")
    view = sidebar_entry(task, request.POST.get("view", sidebar.ALL))
    return after_selection_change(request, task, codes if isinstance(view, ReviewQueue) else [])


def duplicates(request, task_code):
    """The groups of near-copies, label conflicts first; a POST settles one group."""
    task = owned_task(request, task_code)
    if request.method == "POST":
        form = DuplicateGroupForm(request.POST, task=task)
        if form.is_valid():
            messages.success(request, form.save())
            runs.suggest_in_background(task.pk)
        else:
            messages.error(request, form_errors(form))
        return redirect("tasks:duplicates", task.code)
    context = {
        "task": task,
        "groups": task.duplicate_groups(),
        "categories": task.categories.all(),
        **sidebar_context(task),
    }
    return render(request, "tasks/duplicates.html", context)


def images_count(count):
    return f"{count} image" if count == 1 else f"{count} images"


def selection_refused(request, task, form):
    for errors in form.errors.values():
        messages.error(request, " ".join(errors))
    if request.htmx:
        context = {
            "task": task,
            "view_key": posted_view_key(request, task),
            **sidebar_context(task),
        }
        return render(request, "tasks/_sidebar.html", context, status=400)
    return redirect(task)


def after_selection_change(request, task, removed_codes):
    """The side bar with its new counts, and the tiles that left the grid removed."""
    if request.htmx:
        context = {
            "task": task,
            "view_key": posted_view_key(request, task),
            "removed_codes": removed_codes,
            **sidebar_context(task),
        }
        return render(request, "tasks/_sidebar.html", context)
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    query = urlencode({"view": posted_view_key(request, task)})
    return redirect(f"{task.get_absolute_url()}?{query}")


def posted_view_key(request, task):
    """The key of the side-bar entry the grid showed when the form was sent."""
    return sidebar.key(sidebar_entry(task, request.POST.get("view", sidebar.ALL)))


def image_detail(request, task_code, image_code):
    task = owned_task(request, task_code)
    image = get_object_or_404(task.images.select_related("category"), code=image_code)
    context = {
        "task": task,
        "image": image,
        "shows_original": image.file.name.rsplit(".", 1)[-1] in BROWSER_FORMATS,
    }
    if request.htmx:
        return render(request, "tasks/_image.html", context)
    return render(request, "tasks/image_detail.html", {**context, **sidebar_context(task)})


def image_file(request, task_code, image_code):
    task = owned_task(request, task_code)
    image = get_object_or_404(task.images, code=image_code)
    return downloads.original(image, as_attachment="download" in request.GET)


def image_thumbnail(request, task_code, image_code):
    task = owned_task(request, task_code)
    image = get_object_or_404(task.images, code=image_code)
    return downloads.thumbnail(image)


def owned_run(task, run_code):
    return get_object_or_404(task.runs, code=run_code)


def training_context(task):
    current = task.current_run()
    if current:
        runs.reconcile([current])
        current = task.current_run()
    return {
        "current_run": current,
        "active_run": task.active_run,
        "runs": list(task.runs.all()[:10]),
        "readiness": runs.readiness(task),
        "train_form": TrainForm(task=task),
    }


STARTED_MESSAGES = {
    runs.Started.JOINED: "Training had not begun yet, so the queued run takes in your new photos.",
    runs.Started.BUSY: "This task is already training; here is that run.",
}


@require_POST
def train(request, task_code):
    task = owned_task(request, task_code)
    form = TrainForm(request.POST, task=task)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return redirect(task)
    try:
        run, started = form.start()
    except runs.TrainingRefused as refusal:
        messages.error(request, str(refusal))
        return redirect(task)
    except runs.QueueUnavailable:
        messages.error(request, "The job queue is unavailable right now; training did not start.")
        return redirect(task)
    if started in STARTED_MESSAGES:
        messages.info(request, STARTED_MESSAGES[started])
    return redirect(run)


def run_detail(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    runs.reconcile([run])
    if request.htmx.target == "run-progress":
        context = {"task": task, "run": run, "poll": True}
        response = render(request, "tasks/_run_progress.html", context)
        if not run.is_active:
            response["HX-Refresh"] = "true"
        return response
    images = {
        str(image.code): image
        for image in task.images.filter(code__in=[m["image"] for m in run.misclassified])
    }
    context = {
        "task": task,
        "run": run,
        "mistakes": [
            {**m, "image": images[m["image"]]} for m in run.misclassified if m["image"] in images
        ],
        "confusion": confusion_rows(run),
        "operating_points": operating_choices(run),
        "formats": format_rows(run),
        "categories_by_name": {c.name: c for c in task.categories.all()},
        **sidebar_context(task),
    }
    return render(request, "tasks/run_detail.html", context)


def confusion_rows(run):
    """The confusion matrix as rows of (true name, [(count, share of the row)])."""
    if not run.metrics:
        return []
    names = [category["name"] for category in run.metrics["categories"]]
    rows = []
    for name, counts in zip(names, run.metrics["confusion"], strict=True):
        total = sum(counts) or 1
        rows.append((name, [(count, count / total) for count in counts]))
    return rows


def operating_choices(run):
    """The operating points a ready run offers, lowest threshold first, each with the
    share of held-out photos answered and the precision of those answers, overall and
    per predicted category. A threshold that answers the same photos as the one below
    it is left out; the chosen one is always there, measured or not."""
    curve = (run.metrics or {}).get("operating_points")
    if run.status != TrainingRun.Status.READY or not curve:
        return []
    rows, coverage_below = [], None
    for at, threshold in enumerate(curve["thresholds"]):
        chosen = threshold == run.operating_threshold
        if curve["coverage"][at] == coverage_below and not chosen:
            continue
        coverage_below = curve["coverage"][at]
        rows.append(
            {
                "threshold": threshold,
                "coverage": curve["coverage"][at],
                "precision": curve["precision"][at],
                "categories": [
                    (c["coverage"][at], c["precision"][at]) for c in curve["categories"]
                ],
                "chosen": chosen,
                "suggested": threshold == curve["suggested"],
            }
        )
    if run.operating_threshold not in curve["thresholds"]:
        unmeasured = [(None, None)] * len(curve["categories"])
        rows.append(
            {
                "threshold": run.operating_threshold,
                "coverage": None,
                "precision": None,
                "categories": unmeasured,
                "chosen": True,
                "suggested": False,
            }
        )
        rows.sort(key=lambda row: row["threshold"])
    return rows


def format_rows(run):
    """The formats of a ready run's model as its report measured them, each marked with
    whether it is in the model zip, whether a person may choose it to answer (model.onnx,
    and int8 where offered) and whether it answers now."""
    choosable = {MODEL_FILE, INT8_MODEL_FILE} if run.offers_int8 else set()
    return [
        {
            **entry,
            "offered": entry.get("offered", True),
            "choice": "int8" if entry["file"] == INT8_MODEL_FILE else "float",
            "choosable": entry["file"] in choosable,
            "served": entry["file"] == run.served_file,
        }
        for entry in run.formats.get("formats", [])
    ]


@require_POST
def run_operating_point(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    form = OperatingPointForm(request.POST, run=run)
    if not form.is_valid():
        messages.error(request, form_errors(form))
    elif form.save():
        messages.success(
            request,
            "Saved: photos whose top score is below this point now get “needs review”, "
            "here and in the model zip.",
        )
    else:
        messages.error(request, "Only a ready run answers: its operating point waits for it.")
    return redirect(f"{run.get_absolute_url()}#operating-point")


@require_POST
def run_served_model(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    form = ServedModelForm(request.POST, run=run)
    if not form.is_valid():
        messages.error(request, form_errors(form))
    elif form.save():
        messages.success(
            request,
            f"Saved: {run.served_file} answers from now on, here, in the API and in the "
            "model zip's predict.py.",
        )
    else:
        messages.error(request, "Only a ready run whose int8 model kept its answers serves it.")
    return redirect(f"{run.get_absolute_url()}#formats")


@require_POST
def run_cancel(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    if runs.cancel(run):
        messages.success(request, "Training cancelled. The active model is unchanged.")
    return redirect(run)


@require_POST
def run_activate(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    if run.activate():
        messages.success(request, "This model now answers for the task.")
    else:
        messages.error(request, "Only a ready run can answer for the task.")
    return redirect(run)


def run_export(request, task_code, run_code):
    """The model zip, or a page that waits for the job packaging it, or says why the
    packaging failed (POST tries again)."""
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    if run.status != TrainingRun.Status.READY:
        raise Http404("This run has no model to download.")
    state = runs.model_zip(run, retry=request.method == "POST")
    if request.method == "POST":
        return redirect("tasks:run_export", task.code, run.code)
    if state is runs.ModelZip.READY:
        return downloads.model_zip(run)
    return render(request, "tasks/run_export.html", {"task": task, "run": run})


def preview(request, task_code):
    """The page that tries the task's model on photos (the general classifier before
    there is one), storing nothing: the whole page, or for htmx its predictions only."""
    task = owned_task(request, task_code)
    context, busy = {"task": task, "run": task.active_run}, None
    if request.method == "POST":
        try:
            answers = predictions.classify_files(request.FILES.getlist("files"), [task.active_run])
            context["results"] = preview_results(answers)
        except Throttled as refusal:
            busy, context["busy"] = refusal, refusal.message
    if not request.htmx:
        context.update(sidebar_context(task))
    template = "tasks/_predictions.html" if request.htmx else "tasks/preview.html"
    response = render(request, template, context, status=busy.status if busy else 200)
    if busy:
        response["Retry-After"] = str(busy.retry_after)
    return response


def preview_results(answers):
    """A row for each photo sent: its prediction, or why it was not classified. index
    is its place among the files sent when it was sent whole: the browser shows its own
    copy of those, and can add them to a category."""
    return [
        {
            "index": answer.sent.file_index,
            "name": answer.sent.name,
            "error": answer.sent.reason,
            "prediction": answer.predictions[0] if answer.predictions else None,
        }
        for answer in answers
    ]
