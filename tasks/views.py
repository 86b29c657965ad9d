import uuid

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import FileResponse, Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tasks import imports
from tasks.forms import CategoryForm, MoveForm, SelectionForm, TaskForm
from tasks.imaging import BROWSER_FORMATS, CONTENT_TYPES
from tasks.models import Category, Task

grid_cursor = signing.Signer(salt="tasks.grid-cursor")


def owned_task(request, task_code):
    return get_object_or_404(Task, code=task_code, owner=request.user)


def task_list(request):
    form = TaskForm(request.POST or None)
    if form.is_valid():
        form.instance.owner = request.user
        task = form.save()
        return redirect(task)
    tasks = Task.objects.owned_by(request.user).with_counts()
    return render(request, "tasks/task_list.html", {"tasks": tasks, "form": form})


def task_detail(request, task_code):
    task = owned_task(request, task_code)
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
        messages.error(request, " ".join(form.errors["name"]))
    return redirect(task)


@require_POST
def category_rename(request, task_code, category_code):
    task = owned_task(request, task_code)
    category = get_object_or_404(task.categories, code=category_code)
    form = CategoryForm(request.POST, instance=category, task=task)
    if form.is_valid():
        form.save()
    else:
        messages.error(request, " ".join(form.errors["name"]))
    return redirect(task)


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
    if request.htmx:
        return render(request, "tasks/_upload_report.html", {"report": report})
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
