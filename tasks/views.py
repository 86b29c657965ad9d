import uuid

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from tasks import imports, predictions, training
from tasks.forms import CategoryForm, MoveForm, SelectionForm, TaskForm
from tasks.imaging import BROWSER_FORMATS, CONTENT_TYPES
from tasks.models import Category, Task, TrainingRun
from tasks.throttling import Throttled

grid_cursor = signing.Signer(salt="tasks.grid-cursor")


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


def task_detail(request, task_code):
    task = owned_task(request, task_code)
    if request.htmx.target == "training":
        context = {"task": task, **training_context(task)}
        return render(request, "tasks/_training.html", context)
    view = grid_view(task, request.GET.get("view", "all"))
    images = task.images.in_view(view).select_related("category")
    cursor = request.GET.get("cursor")
    if cursor:
        try:
            images = images.filter(id__lt=int(grid_cursor.unsign(cursor)))
        except signing.BadSignature:
            return HttpResponseBadRequest("That page of the grid does not exist.")
    page = list(images[: settings.VIZE_GRID_PAGE_SIZE + 1])
    has_more = len(page) > settings.VIZE_GRID_PAGE_SIZE
    page = page[: settings.VIZE_GRID_PAGE_SIZE]
    context = {
        "task": task,
        "view": view,
        "view_key": view_key(view),
        "images": page,
        "next_cursor": grid_cursor.sign(str(page[-1].id)) if has_more else "",
        **sidebar_context(task),
        **training_context(task),
    }
    if request.htmx and cursor:
        return render(request, "tasks/_grid_page.html", context)
    if request.htmx.target == "sidebar":
        return render(request, "tasks/_sidebar.html", context)
    if request.htmx.target == "grid":
        return render(request, "tasks/_grid.html", context)
    return render(request, "tasks/task_detail.html", context)


def grid_view(task, key):
    """The side-bar entry a grid shows: "all", "unsorted", or one of the task's categories."""
    if key in ("all", "unsorted"):
        return key
    try:
        return task.categories.get(code=uuid.UUID(key))
    except (ValueError, Category.DoesNotExist):
        raise Http404("No such category in this task.") from None


def view_key(view):
    return str(view.code) if isinstance(view, Category) else view


def sidebar_context(task):
    categories = list(task.categories_with_counts())
    unsorted_count = task.unsorted_count()
    return {
        "categories": categories,
        "unsorted_count": unsorted_count,
        "image_count": unsorted_count + sum(category.image_count for category in categories),
        "category_form": CategoryForm(task=task),
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
    messages.success(
        request,
        f"Deleted the category “{category.name}”; its {images_count(moved)} are in Unsorted.",
    )
    return redirect(task)


@require_POST
def upload(request, task_code):
    task = owned_task(request, task_code)
    target = request.POST.get("target", "unsorted")
    category = None
    if target not in ("task", "unsorted"):
        category = get_object_or_404(task.categories, code=parse_code(target))
    files = request.FILES.getlist("files")
    if not files:
        return HttpResponseBadRequest("Choose at least one photo or zip file to upload.")
    report = imports.import_files(
        task, files, category=category, folders_as_categories=target == "task"
    )
    if report.added:
        training.embed_in_background(task)
    if request.htmx:
        response = render(request, "tasks/_upload_report.html", {"report": report})
        return trigger_client_event(response, "uploaded", report.counts)
    messages.info(request, report_summary(report))
    for rejected in report.rejected[:20]:
        messages.warning(request, f"{rejected.name}: {rejected.reason}")
    return redirect(task)


def parse_code(value):
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Http404("No such category in this task.") from None


def report_summary(report):
    return (
        f"{len(report.added)} added, {len(report.duplicates)} duplicates, "
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
    destination = form.cleaned_data["category"]
    messages.success(request, f"Moved {images_count(moved)} to {destination or 'Unsorted'}.")
    view = grid_view(task, request.POST.get("view", "all"))
    leaving = [] if view == "all" or view == destination else codes
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
    messages.success(request, f"Deleted {images_count(deleted)}.")
    return after_selection_change(request, task, codes)


def images_count(count):
    return f"{count} image" if count == 1 else f"{count} images"


def selection_refused(request, task, form):
    for errors in form.errors.values():
        messages.error(request, " ".join(errors))
    if request.htmx:
        context = {
            "task": task,
            "view_key": request.POST.get("view", "all"),
            **sidebar_context(task),
        }
        return render(request, "tasks/_sidebar.html", context, status=400)
    return redirect(task)


def after_selection_change(request, task, removed_codes):
    """The side bar with its new counts, and the tiles that left the grid removed."""
    if request.htmx:
        context = {
            "task": task,
            "view_key": request.POST.get("view", "all"),
            "removed_codes": removed_codes,
            **sidebar_context(task),
        }
        return render(request, "tasks/_sidebar.html", context)
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect(f"{task.get_absolute_url()}?view={request.POST.get('view', 'all')}")


def image_detail(request, task_code, image_code):
    task = owned_task(request, task_code)
    image = get_object_or_404(task.images.select_related("category"), code=image_code)
    context = {
        "task": task,
        "image": image,
        "shows_original": image.file.name.rsplit(".", 1)[-1] in BROWSER_FORMATS,
        **sidebar_context(task),
    }
    if request.htmx:
        return render(request, "tasks/_image.html", context)
    return render(request, "tasks/image_detail.html", context)


def image_file(request, task_code, image_code):
    task = owned_task(request, task_code)
    image = get_object_or_404(task.images, code=image_code)
    extension = image.file.name.rsplit(".", 1)[-1]
    download = "download" in request.GET
    return stored_file(image.file, CONTENT_TYPES[extension], download, f"{image.code}.{extension}")


def image_thumbnail(request, task_code, image_code):
    task = owned_task(request, task_code)
    image = get_object_or_404(task.images, code=image_code)
    return stored_file(image.thumbnail, "image/jpeg", False, f"{image.code}.jpg")


def stored_file(field_file, content_type, as_attachment, filename):
    """A stored image, always with the content type the server chose, never sniffed."""
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    response = FileResponse(
        handle, content_type=content_type, as_attachment=as_attachment, filename=filename
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    return response


def owned_run(task, run_code):
    return get_object_or_404(task.runs, code=run_code)


def training_context(task):
    current = task.current_run()
    if current:
        training.reconcile([current])
        current = task.current_run()
    return {
        "current_run": current,
        "active_run": task.active_run,
        "runs": list(task.runs.all()[:10]),
        "readiness": training.readiness(task),
        "base_models": training.BASE_MODELS,
        "default_base_model": training.DEFAULT_BASE_MODEL,
        "modes": training.MODES,
        "default_mode": training.DEFAULT_MODE,
        "time_budgets": training.TIME_BUDGETS,
        "default_time_budget": training.DEFAULT_TIME_BUDGET,
    }


@require_POST
def train(request, task_code):
    task = owned_task(request, task_code)
    try:
        run, started = training.start(
            task,
            request.POST.get("base_model", training.DEFAULT_BASE_MODEL),
            request.POST.get("mode", training.DEFAULT_MODE),
            parse_seconds(request.POST.get("time_budget", training.DEFAULT_TIME_BUDGET)),
        )
    except training.TrainingRefused as refusal:
        messages.error(request, str(refusal))
        return redirect(task)
    except training.QueueUnavailable:
        messages.error(request, "The job queue is unavailable right now; training did not start.")
        return redirect(task)
    if not started:
        messages.info(request, "This task is already training; here is that run.")
    return redirect(run)


def parse_seconds(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def run_detail(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    training.reconcile([run])
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


@require_POST
def run_cancel(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    if training.cancel(run):
        messages.success(request, "Training cancelled. The active model is unchanged.")
    return redirect(run)


@require_POST
def run_activate(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    try:
        training.activate(run)
    except training.TrainingRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, "This model now answers for the task.")
    return redirect(run)


def run_export(request, task_code, run_code):
    """The model zip, or a page that waits for the job packaging it, or says why the
    packaging failed (POST tries again)."""
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    if run.status != TrainingRun.Status.READY:
        raise Http404("This run has no model to download.")
    if request.method == "POST":
        training.retry_packaging(run)
        return redirect("tasks:run_export", task.code, run.code)
    if run.export_ready:
        return FileResponse(
            default_storage.open(run.export_file),
            as_attachment=True,
            filename=run.export_filename,
            content_type="application/zip",
        )
    training.package_in_background(run)
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
