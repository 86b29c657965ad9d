from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Sum
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh, trigger_client_event

from tasks import (
    datasets,
    downloads,
    imports,
    predictions,
    runs,
    sidebar,
    undoing,
    webhooks,
    zips,
)
from tasks.forms import (
    AcceptSuggestionsForm,
    AddPhotoForm,
    CategoryForm,
    DuplicateGroupForm,
    MoveForm,
    OperatingPointForm,
    SelectionForm,
    ServedModelForm,
    TaskForm,
    TrainForm,
    WebhookForm,
)
from tasks.imaging import BROWSER_FORMATS
from tasks.models import (
    REVIEW_QUEUES,
    BadCursor,
    Category,
    ReviewQueue,
    Task,
    TrainingRun,
    Webhook,
)
from tasks.throttling import Throttled
from trainer.files import INT8_MODEL_FILE, MODEL_FILE


def owned_task(request, task_code):
    return get_object_or_404(Task, code=task_code, owner=request.user)


@login_not_required
def task_list(request):
    """The task list; signed out, the home page that says what vizeapp is."""
    if not request.user.is_authenticated:
        return render(request, "home.html")
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
    if request.htmx.target == "viewer":
        # The larger view's last photo left its view: back to the grid, with the notice.
        return HttpResponseClientRefresh()
    view = sidebar_entry(task, request.GET.get("view", sidebar.ALL))
    context = {
        "task": task,
        "view": view,
        "view_key": sidebar.key(view),
        "review_queue": view if isinstance(view, ReviewQueue) else None,
    }
    if request.htmx.target == "sidebar":  # after an upload: every count of the page
        return render(request, "tasks/_counts.html", {**context, **counts_context(task)})
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
    context.update(counts_context(task))
    return render(request, "tasks/task_detail.html", context)


def sidebar_entry(task, key):
    """The side-bar entry a key sent by a page names; 404 for none of them."""
    try:
        return sidebar.entry(task, key)
    except sidebar.UnknownEntry:
        raise Http404("No such category in this task.") from None


def counts_context(task):
    """What the task page counts: the side bar, the training panel, the near-copies."""
    return {
        **sidebar_context(task),
        **training_context(task),
        "duplicate_group_count": task.duplicate_group_count(),
    }


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
        messages.error(request, _("A task needs a name of at most 100 characters."))
    return redirect(task)


def task_delete(request, task_code):
    task = owned_task(request, task_code)
    if request.method == "POST":
        name = task.name
        task.delete_with_files()
        messages.success(
            request, _("Deleted the task “%(name)s” and all its images.") % {"name": name}
        )
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
        messages.success(request, _("Added the category “%(name)s”.") % {"name": category.name})
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
        ngettext(
            "Deleted the category “%(name)s”; its %(count)s image is in Unsorted.",
            "Deleted the category “%(name)s”; its %(count)s images are in Unsorted.",
            moved,
        )
        % {"name": category.name, "count": moved},
    )
    return redirect(task)


@require_POST
def upload(request, task_code):
    task = owned_task(request, task_code)
    target = sidebar_entry(task, request.POST.get("target", sidebar.UNSORTED))
    files = request.FILES.getlist("files")
    if not files:
        refusal = _("Choose at least one photo or zip file to upload.")
        if request.htmx:  # labeling.js shows the answer of a refused batch
            return HttpResponseBadRequest(refusal)
        messages.error(request, refusal)
        return redirect(f"{task.get_absolute_url()}?{urlencode({'view': sidebar.key(target)})}")
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
    counts = {
        "added": len(report.added),
        "near": len(report.near_duplicates),
        "duplicates": len(report.duplicates),
        "rejected": len(report.rejected),
    }
    if report.near_duplicates:
        return (
            _(
                "%(added)s added (%(near)s near-copies), %(duplicates)s duplicates, "
                "%(rejected)s rejected."
            )
            % counts
        )
    return _("%(added)s added, %(duplicates)s duplicates, %(rejected)s rejected.") % counts


@require_POST
def images_move(request, task_code):
    task = owned_task(request, task_code)
    form = MoveForm(request.POST, task=task)
    if not form.is_valid():
        return selection_refused(request, task, form)
    moved_from = list(form.selected_images().values_list("code", "category_id"))
    moved = form.save()
    undoing.remember_move(request, task, moved_from)
    runs.suggest_in_background(task.pk)
    destination = form.cleaned_data["category"]
    messages.success(
        request,
        _("Moved %(images)s to %(where)s.")
        % {"images": images_count(moved), "where": destination or _("Unsorted")},
        extra_tags=undoing.TAG,
    )
    view = sidebar_entry(task, request.POST.get("view", sidebar.ALL))
    leave = view not in (sidebar.ALL, destination)
    return after_selection_change(request, task, [code for code, _ in moved_from], leave)


@require_POST
def images_delete(request, task_code):
    task = owned_task(request, task_code)
    form = SelectionForm(request.POST, task=task)
    if not form.is_valid():
        return selection_refused(request, task, form)
    images = form.selected_images()
    codes = list(images.values_list("code", flat=True))
    deleted = images.discard()
    undoing.remember_delete(request, task, codes)
    runs.suggest_in_background(task.pk)
    messages.success(
        request,
        _("Deleted %(images)s.") % {"images": images_count(deleted)},
        extra_tags=undoing.TAG,
    )
    return after_selection_change(request, task, codes, leave=True)


@require_POST
def undo(request, task_code):
    """Undo the person's last move or delete in this task (tasks/undoing.py), then back
    to the page the notice was on."""
    task = owned_task(request, task_code)
    try:
        undone = undoing.undo(request, task)
    except undoing.CannotUndo as refusal:
        messages.error(request, str(refusal))
    else:
        runs.suggest_in_background(task.pk)
        if undone.places:
            where = ", ".join(undone.places)
            messages.success(
                request,
                _("Put %(images)s back in %(where)s.")
                % {"images": images_count(undone.count), "where": where},
            )
        else:
            messages.success(
                request, _("Brought back %(images)s.") % {"images": images_count(undone.count)}
            )
    return redirect(posted_next(request) or task.get_absolute_url())


@require_POST
def suggestions_accept(request, task_code):
    task = owned_task(request, task_code)
    form = AcceptSuggestionsForm(request.POST, task=task)
    if not form.is_valid():
        return selection_refused(request, task, form)
    moved_from = form.save()
    runs.suggest_in_background(task.pk)
    accepted = [code for code, _ in moved_from]
    if accepted:
        undoing.remember_move(request, task, moved_from)
        messages.success(
            request,
            _("Accepted the suggestions of %(images)s.") % {"images": images_count(len(accepted))},
            extra_tags=undoing.TAG,
        )
    elif form.cleaned_data["images"]:
        messages.info(request, _("None of the selected photos has a suggestion to accept."))
    else:
        messages.info(request, _("No Unsorted photo has a suggestion that sure yet."))
    view = sidebar_entry(task, request.POST.get("view", sidebar.ALL))
    # Accepted photos leave every view but All: they move to another category.
    return after_selection_change(request, task, accepted, leave=view != sidebar.ALL)


@require_POST
def images_keep(request, task_code):
    task = owned_task(request, task_code)
    form = SelectionForm(request.POST, task=task)
    if not form.is_valid():
        return selection_refused(request, task, form)
    images = form.selected_images()
    codes = list(images.values_list("code", flat=True))
    kept = images.keep_as_they_are()
    messages.success(
        request,
        ngettext(
            "Kept %(count)s image as it is: review will not ask again.",
            "Kept %(count)s images as they are: review will not ask again.",
            kept,
        )
        % {"count": kept},
    )
    view = sidebar_entry(task, request.POST.get("view", sidebar.ALL))
    return after_selection_change(request, task, codes, leave=isinstance(view, ReviewQueue))


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
    return ngettext("%(count)s image", "%(count)s images", count) % {"count": count}


def selection_refused(request, task, form):
    """The page says why, as after a change that changed nothing: htmx swaps only an
    answer of 2xx, so a refusal answered 400 left the page silent."""
    for errors in form.errors.values():
        messages.error(request, " ".join(errors))
    return after_selection_change(request, task, [], leave=False)


def after_selection_change(request, task, codes, leave):
    """To htmx, every count of the task page anew and the changed photos' tiles: gone
    from the grid if they leave the view it shows, else their labels shown again. A form
    that names the page to go back to (next) goes there, as without JavaScript: the
    larger view's next photo, which htmx follows too."""
    back = posted_next(request)
    if request.htmx and not back:
        context = {
            "task": task,
            "view_key": posted_view_key(request, task),
            "removed_codes": codes if leave else [],
            "relabelled": [] if leave else sidebar.images(task, sidebar.ALL).filter(code__in=codes),
            **counts_context(task),
        }
        return render(request, "tasks/_counts.html", context)
    if back:
        return redirect(back)
    query = urlencode({"view": posted_view_key(request, task)})
    return redirect(f"{task.get_absolute_url()}?{query}")


def posted_next(request):
    """The page of this site a form asks to go to next, or ""."""
    back = request.POST.get("next", "")
    return back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) else ""


def posted_view_key(request, task):
    """The key of the side-bar entry the grid showed when the form was sent."""
    return sidebar.key(sidebar_entry(task, request.POST.get("view", sidebar.ALL)))


def image_detail(request, task_code, image_code):
    """A photo larger, with the photos before and after it in the grid it was opened
    from (?view=, ?order=), and buttons that move or delete it and then show the next."""
    task = owned_task(request, task_code)
    image = get_object_or_404(task.images.select_related("category"), code=image_code)
    view = sidebar_entry(task, request.GET.get("view", sidebar.ALL))
    most_sure = view == sidebar.UNSORTED and request.GET.get("order") == MOST_SURE
    context = {
        "task": task,
        "image": image,
        "shows_original": image.file.name.rsplit(".", 1)[-1] in BROWSER_FORMATS,
        "view_key": sidebar.key(view),
        **walk_urls(task, view, image, most_sure),
        "categories": task.categories.all(),
    }
    if not request.htmx:
        return render(request, "tasks/image_detail.html", {**context, **sidebar_context(task)})
    if messages.get_messages(request):
        # The view after a move, delete or undo: the side bar behind it shows new counts.
        context.update(sidebar_context(task), sidebar_changed=True)
    return render(request, "tasks/_image.html", context)


def walk_urls(task, view, image, most_sure):
    """The larger view's links: the grid it was opened from, the photos before and after
    it there (None at an end), and where a move or delete leads (then): the next photo,
    else the one before, else the grid."""
    previous, following = sidebar.neighbours(sidebar.images(task, view), view, image, most_sure)
    query = urlencode({"view": sidebar.key(view), **({"order": MOST_SURE} if most_sure else {})})
    urls = {
        "grid_url": f"{task.get_absolute_url()}?{query}",
        "previous_url": previous and image_url(task, previous, query),
        "next_url": following and image_url(task, following, query),
    }
    return {**urls, "then_url": urls["next_url"] or urls["previous_url"] or urls["grid_url"]}


def image_url(task, image, query):
    return f"{reverse('tasks:image_detail', args=[task.code, image.code])}?{query}"


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
    active = task.active_run
    return {
        "current_run": current,
        "active_run": active,
        # The run in progress took the photos as they are: nothing to tell while it trains.
        "photo_changes": active.photo_changes() if active and not current else None,
        "runs": list(task.runs.listed()[:10]),
        "readiness": runs.readiness(task),
        "train_form": TrainForm(task=task),
    }


def retraining_context(task, run):
    """The run page's Train again: the task page's form and rules, this run's choices."""
    choices = {"base_model": run.base_model, "mode": run.mode, "time_budget": run.time_budget}
    return {
        "current_run": task.current_run(),
        "photo_changes": run.photo_changes() if run.status == TrainingRun.Status.READY else None,
        "readiness": runs.readiness(task),
        "train_form": TrainForm(task=task, initial=choices),
    }


STARTED_MESSAGES = {
    runs.Started.JOINED: gettext_lazy(
        "Training had not begun yet, so the queued run takes in your new photos."
    ),
    runs.Started.BUSY: gettext_lazy("This task is already training; here is that run."),
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
        messages.error(
            request, _("The job queue is unavailable right now; training did not start.")
        )
        return redirect(task)
    if started in STARTED_MESSAGES:
        messages.info(request, STARTED_MESSAGES[started])
    return redirect(run)


def run_detail(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    runs.reconcile([run])
    if request.htmx.target == "run-progress":
        # The heading says the stage too: it comes along, out of band.
        context = {"task": task, "run": run, "poll": True}
        response = render(request, "tasks/_run_poll.html", context)
        if not run.is_active:
            response["HX-Refresh"] = "true"
        return response
    context = {
        "task": task,
        "run": run,
        "mistakes": mistakes(task, run),
        "confusion": confusion_rows(run),
        "operating_points": operating_choices(run),
        "formats": format_rows(run),
        "categories_by_name": {c.name: c for c in task.categories.all()},
        **sidebar_context(task),
    }
    if not run.is_active:
        context.update(retraining_context(task, run))
    return render(request, "tasks/run_detail.html", context)


def mistakes(task, run):
    """The photos the run's model got wrong that the task still holds, each with where it
    sits now, the category the model saw in it, that category's score, and whether
    moving it there is still to be done."""
    found = task.images.select_related("category").filter(
        code__in=[mistake["image"] for mistake in run.misclassified]
    )
    images = {str(image.code): image for image in found}
    categories = {category.name: category for category in task.categories.all()}
    rows = []
    for mistake in run.misclassified:
        image = images.get(mistake["image"])
        if image is None:
            continue
        predicted = categories.get(mistake["predicted"])
        rows.append(
            {
                "image": image,
                "true": mistake["true"],
                "predicted": mistake["predicted"],
                "score": mistake["scores"].get(mistake["predicted"]),
                "move_to": predicted if predicted and predicted.pk != image.category_id else None,
            }
        )
    return rows


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
            _(
                "Saved: photos whose top score is below this point now get “needs review”, "
                "here and in the model zip."
            ),
        )
    else:
        messages.error(request, _("Only a ready run answers: its operating point waits for it."))
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
            _(
                "Saved: %(file)s answers from now on, here, in the API and in the "
                "model zip's predict.py."
            )
            % {"file": run.served_file},
        )
    else:
        messages.error(request, _("Only a ready run whose int8 model kept its answers serves it."))
    return redirect(f"{run.get_absolute_url()}#formats")


@require_POST
def run_cancel(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    if runs.cancel(run):
        messages.success(request, _("Training cancelled. The active model is unchanged."))
    else:
        messages.info(request, _("This run had already ended; there was nothing to cancel."))
    return redirect(run)


@require_POST
def run_activate(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    if run.activate():
        messages.success(request, _("This model now answers for the task."))
    else:
        messages.error(request, _("Only a ready run can answer for the task."))
    return redirect(run)


def run_export(request, task_code, run_code):
    task = owned_task(request, task_code)
    run = owned_run(task, run_code)
    if run.status != TrainingRun.Status.READY:
        raise Http404("This run has no model to download.")
    context = {"task": task, "run": run}
    return built_zip(request, runs.ModelZip(run), "tasks/run_export.html", context)


# Download dataset


def dataset(request, task_code):
    """The task's photos and labels (tasks/datasets.py), with the active model's answers."""
    task = owned_task(request, task_code)
    built = datasets.current(task, task.active_run)
    photos = task.images.aggregate(count=Count("id"), size=Sum("size"))
    context = {"task": task, "built": built, "photos": photos}
    return built_zip(request, built, "tasks/dataset.html", context)


def built_zip(request, built, template, context):
    """The zip (tasks/zips.py), or a page that waits for the job building it and
    refreshes itself, or says why the build failed; a POST tries again."""
    state = zips.ask(built, retry=request.method == "POST")
    if request.method == "POST":
        return redirect(request.get_full_path())
    if state is zips.Built.READY:
        return built.download()
    return render(request, template, context)


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
            busy, context["busy"] = refusal, _(refusal.message)
    if not request.htmx:
        context.update(sidebar_context(task))
    template = "tasks/_predictions.html" if request.htmx else "tasks/preview.html"
    response = render(request, template, context, status=busy.status if busy else 200)
    if busy:
        response["Retry-After"] = str(busy.retry_after)
    return response


# How the preview page's Add to answers each outcome of AddPhotoForm.
ADDED_LEVELS = {
    AddPhotoForm.ADDED: messages.SUCCESS,
    AddPhotoForm.MOVED: messages.SUCCESS,
    AddPhotoForm.ALREADY: messages.INFO,
    AddPhotoForm.REJECTED: messages.ERROR,
}


@require_POST
def preview_add(request, task_code):
    """Add a photo tried on the preview page to a category (AddPhotoForm). To htmx: the
    side bar with its new counts and the message, and an "added" event that tells the
    page's script what happened to which category."""
    task = owned_task(request, task_code)
    form = AddPhotoForm(request.POST, request.FILES, task=task)
    outcome, sentence = form.save() if form.is_valid() else (None, form_errors(form))
    messages.add_message(request, ADDED_LEVELS.get(outcome, messages.ERROR), sentence)
    if outcome == AddPhotoForm.ADDED:
        runs.embed_in_background(task)
    if outcome in (AddPhotoForm.ADDED, AddPhotoForm.MOVED):
        runs.suggest_in_background(task.pk)
    if not request.htmx:
        return redirect("tasks:preview", task.code)
    context = {"task": task, "view_key": None, **sidebar_context(task)}
    response = render(request, "tasks/_sidebar.html", context)
    category = request.POST.get("category", "")
    return trigger_client_event(
        response, "added", {"outcome": outcome, "category": category, "message": sentence}
    )


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


# Webhooks


def task_webhooks(request, task_code):
    """The task's webhooks and their deliveries; a POST adds one, whose secret is shown
    on this one answer and never again."""
    task = owned_task(request, task_code)
    form = WebhookForm(request.POST or None)
    added = None
    if form.is_valid():
        try:
            added = webhooks.add(task, form.cleaned_data["url"], request.build_absolute_uri("/"))
            form = WebhookForm()
        except webhooks.WebhookRefused as refusal:
            form.add_error("url", str(refusal))
    context = {
        "task": task,
        "form": form,
        "added": added,
        "hooks": task.webhooks.prefetch_related("deliveries"),
        "limit": Webhook.LIMIT,
        "attempts": webhooks.ATTEMPTS,
        **sidebar_context(task),
    }
    response = render(request, "tasks/webhooks.html", context)
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


@require_POST
def task_webhook_remove(request, task_code, webhook_code):
    task = owned_task(request, task_code)
    hook = get_object_or_404(task.webhooks, code=webhook_code)
    hook.delete()
    messages.success(
        request, _("Removed the webhook %(url)s; it is not called again.") % {"url": hook.url}
    )
    return redirect("tasks:webhooks", task.code)
