"""IBM Watson Visual Recognition v3, custom classifiers, under
/visual-recognition/api/v3/: the tutorial's curl commands and the `VisualRecognitionV3`
client of the Watson SDKs work here with only the host and key changed.

A classifier is an ordinary task (shown, previewed, exported and retrained in the
browser too) whose `watson_id` is its classifier_id. Answers and errors take Watson's
shapes; the work is done by the same modules as the pages and /api/v1/.
"""

import base64
import binascii
import functools
import re
import secrets
from dataclasses import replace
from datetime import date

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from tasks import downloads, imports, predictions, runs, zips
from tasks.models import ApiKey, Task
from tasks.throttling import Throttled, classify_rate
from trainer.files import COREML_FILE

MB = 1024 * 1024
# IBM's limits: per example zip, per training call, per classify zip.
ZIP_BYTES = 100 * MB
TRAINING_ZIP_IMAGES = 10_000
TRAINING_CALL_BYTES = 256 * MB
MIN_EXAMPLES = 10
CLASSIFY_ZIP_IMAGES = 20
DEFAULT_THRESHOLD = 0.5
GENERAL_TOP = 10
# IBM: class names must not contain these characters.
FORBIDDEN_IN_CLASS_NAMES = set("\\|*{}$-/'`\"")
NEGATIVE_CATEGORY = "negative examples"
POSITIVE_SUFFIX = "_positive_examples"


class WatsonError(Exception):
    def __init__(self, code, error):
        super().__init__(error)
        self.code = code
        self.error = error


def watson_view(methods):
    """Basic auth with the user apikey, the version date, Watson's error shape."""

    def decorate(view):
        @csrf_exempt
        @login_not_required
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise WatsonError(405, f"Method {request.method} is not allowed here.")
                request.api_key = api_key(request)
                request.owner = request.api_key.owner
                check_version(request.GET.get("version"))
                return view(request, *args, **kwargs)
            except WatsonError as failure:
                return JsonResponse(
                    {"code": failure.code, "error": failure.error}, status=failure.code
                )
            except Throttled as throttled:
                response = JsonResponse(
                    {"code": throttled.status, "error": throttled.message}, status=throttled.status
                )
                response["Retry-After"] = str(throttled.retry_after)
                return response

        return wrapper

    return decorate


def api_key(request):
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    try:
        user, _, key = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = key = ""
    found = ApiKey.find(key) if scheme.lower() == "basic" and user == "apikey" else None
    if found is None:
        raise WatsonError(401, "Unauthorized: send HTTP Basic with the user apikey and your key.")
    return found


def check_version(version):
    if not version:
        raise WatsonError(400, "Missing required query parameter: version (a date, 2018-03-19).")
    try:
        date.fromisoformat(version)
    except ValueError:
        raise WatsonError(400, f"The version {version!r} is not a date like 2018-03-19.") from None


def timestamp(moment):
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def classifier_json(task, verbose=True):
    current = task.current_run()
    last = task.runs.first()
    if current:
        status = "retraining" if task.active_run else "training"
    elif task.active_run:
        status = "ready"
    else:
        status = "failed"
    answer = {"classifier_id": task.watson_id, "name": task.name, "status": status}
    if not verbose:
        return answer
    answer.update(
        owner=task.owner.username,
        created=timestamp(task.created),
        updated=timestamp(task.updated),
        classes=[{"class": c.name} for c in task.categories.filter(is_negative=False)],
        core_ml_enabled=bool(task.active_run and task.active_run.has_core_ml),
    )
    if status == "failed":
        answer["explanation"] = last.reason if last else "Training did not start."
    if task.active_run and task.runs.filter(status="ready").count() > 1:
        answer["retrained"] = timestamp(task.active_run.finished)
    return answer


def owned_classifier(request, classifier_id, get=None):
    """The key owner's task with this Watson id, read by get (Task.objects.get or
    Task.answering): 404 if there is none."""
    get = get or Task.objects.get
    try:
        return get(owner=request.owner, watson_id=classifier_id)
    except Task.DoesNotExist:
        raise WatsonError(404, f"Cannot find classifier {classifier_id}.") from None


@watson_view(["GET", "POST"])
def classifiers(request):
    if request.method == "POST":
        return create_classifier(request)
    verbose = request.GET.get("verbose", "").lower() == "true"
    tasks = Task.objects.filter(owner=request.owner).exclude(watson_id=None).order_by("id")
    return JsonResponse({"classifiers": [classifier_json(t, verbose) for t in tasks]})


def create_classifier(request):
    name = request.POST.get("name", "").strip()
    if not name:
        raise WatsonError(400, "Missing required parameter: name.")
    if len(name) > 100:
        raise WatsonError(400, "The name may have at most 100 characters.")
    examples = training_examples(request)
    positives = [class_name for class_name, _ in examples if class_name]
    if len(examples) < 2 or not positives:
        raise WatsonError(
            400,
            "Send at least two example zips: two {class}_positive_examples, or one "
            "positive and negative_examples.",
        )
    slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "classifier"
    with transaction.atomic():
        task = Task.objects.create(
            owner=request.owner,
            name=name,
            watson_id=f"{slug}_{secrets.randbelow(9 * 10**9) + 10**9}",
        )
    add_examples(task, examples)
    try:
        runs.start(task)
    except (runs.TrainingRefused, runs.QueueUnavailable) as refusal:
        task.delete_with_files()
        raise WatsonError(400, f"Training could not start: {refusal}") from None
    return JsonResponse(classifier_json(Task.objects.get(pk=task.pk)))


def training_examples(request):
    """[(class name, or None for the negatives, zip upload)], each checked against
    Watson's limits before anything is stored."""
    examples = []
    total = 0
    for field, upload in request.FILES.items():
        if field == "negative_examples":
            class_name = None
        elif field.endswith(POSITIVE_SUFFIX):
            class_name = field.removesuffix(POSITIVE_SUFFIX)
            check_class_name(class_name, field)
        else:
            raise WatsonError(
                400,
                f"Unknown file parameter {field}: use {{class}}_positive_examples or "
                "negative_examples.",
            )
        total += upload.size
        if upload.read(len(imports.ZIP_MAGIC)) != imports.ZIP_MAGIC:
            raise WatsonError(400, f"{field} must be a zip file of images.")
        upload.seek(0)
        archive = imports.ZipUpload(upload, ibm_limits(TRAINING_ZIP_IMAGES))
        if archive.refusal:
            raise WatsonError(413 if archive.over_limit else 400, f"{field}: {archive.refusal}.")
        if len(archive.paths) < MIN_EXAMPLES:
            raise WatsonError(
                400,
                f"{field} holds {len(archive.paths)} images; each zip needs at least "
                f"{MIN_EXAMPLES}.",
            )
        examples.append((class_name, upload))
    if total > TRAINING_CALL_BYTES:
        raise WatsonError(413, "The examples add up to more than 256 MB; send them in parts.")
    return examples


def ibm_limits(zip_members):
    """IBM's limits on a zip (100 MB, and zip_members images: 10,000 to train, 20 to
    classify), on top of the limits every face shares."""
    return replace(imports.Limits.from_settings(), zip_bytes=ZIP_BYTES, zip_members=zip_members)


def check_class_name(class_name, field):
    forbidden = sorted(FORBIDDEN_IN_CLASS_NAMES & set(class_name))
    if not class_name.strip() or forbidden or len(class_name) > 100:
        raise WatsonError(
            400,
            f"{field}: a class name must be 1 to 100 characters without "
            f"{' '.join(sorted(FORBIDDEN_IN_CLASS_NAMES))}.",
        )


def add_examples(task, examples):
    for class_name, upload in examples:
        if class_name is None:
            category = task.categories.filter(is_negative=True).first() or task.categories.create(
                name=NEGATIVE_CATEGORY, is_negative=True
            )
        else:
            category = task.category_named(class_name)
        limits = ibm_limits(TRAINING_ZIP_IMAGES)
        imports.import_files(task, [upload], category=category, limits=limits)
    runs.embed_in_background(task)


@watson_view(["GET", "POST", "DELETE"])
def classifier(request, classifier_id):
    task = owned_classifier(request, classifier_id)
    if request.method == "DELETE":
        task.delete_with_files()
        return JsonResponse({})
    if request.method == "POST":
        examples = training_examples(request)
        if not examples:
            raise WatsonError(
                400, "Send at least one {class}_positive_examples or negative_examples zip."
            )
        add_examples(task, examples)
        try:
            _, started = runs.start(task)
        except (runs.TrainingRefused, runs.QueueUnavailable) as refusal:
            raise WatsonError(400, f"Retraining could not start: {refusal}") from None
        if started is runs.Started.BUSY:
            raise WatsonError(
                409,
                f"Classifier {classifier_id} is already training on the examples it had; the "
                "new examples are stored, and the next retrain will use them.",
            )
        task.save(update_fields=["updated"])
    return JsonResponse(classifier_json(Task.objects.get(pk=task.pk)))


@watson_view(["GET"])
def core_ml_model(request, classifier_id):
    """The active model as Core ML (trainer/coreml.py), converted with its other formats
    when its model zip is packaged; until then 202 with Retry-After, as /api/v1's
    export answers while it packages."""
    task = owned_classifier(request, classifier_id)
    run = task.active_run
    if run is None:
        raise WatsonError(404, f"Classifier {classifier_id} has no trained model yet.")
    if not run.has_core_ml:
        state = zips.ask(runs.ModelZip(run))
        if state is zips.Built.READY:  # packaged without formats
            raise WatsonError(
                404, f"Classifier {classifier_id} has no Core ML model: its photos were deleted."
            )
        if state is zips.Built.FAILED:
            raise WatsonError(503, run.export_failure)
        response = JsonResponse(
            {
                "code": 202,
                "error": "The Core ML model is being converted; try again in a few seconds.",
            },
            status=202,
        )
        response["Retry-After"] = "5"
        return response
    response = downloads.stored_file(
        f"{run.model_folder}/{COREML_FILE}",
        "application/octet-stream",
        True,
        f"{classifier_id}.mlmodel",
    )
    response["Cache-Control"] = "private, no-cache"
    return response


@watson_view(["GET", "POST"])
def classify(request):
    classify_rate.check(request.api_key)  # before the upload is read: 429 costs nothing
    fields = request.POST if request.method == "POST" else request.GET
    threshold = parse_threshold(fields.get("threshold"))
    chosen = chosen_classifiers(request, fields)
    uploads, urls = classify_inputs(request, fields)
    answers = predictions.classify_files(
        uploads,
        [task.active_run if task else None for _, task in chosen],
        urls=urls,
        limits=ibm_limits(CLASSIFY_ZIP_IMAGES),
        top=GENERAL_TOP,
        check=refuse_a_whole_zip,
    )
    custom_classes = sum(
        task.categories.filter(is_negative=False).count() for _, task in chosen if task
    )
    return JsonResponse(
        {
            "images": [image_json(answer, chosen, threshold) for answer in answers],
            "images_processed": sum(answer.sent.image is not None for answer in answers),
            "custom_classes": custom_classes,
        }
    )


def classify_inputs(request, fields):
    """(uploads, urls): each images_file part (IBM sends one) and the url field."""
    uploads = request.FILES.getlist("images_file")
    url = fields.get("url", "").strip()
    if not uploads and not url:
        raise WatsonError(400, "Send images_file (an image or a zip of images) or url.")
    return uploads, [url] if url else []


def refuse_a_whole_zip(sent):
    """Watson refuses the request for a zip it cannot take as a whole (more than 20
    images, too large, unreadable), and answers each other bad image on its own."""
    refused = next((file for file in sent if file.whole_zip), None)
    if refused:
        raise WatsonError(413 if refused.over_limit else 400, f"{refused.name}: {refused.reason}.")


def image_json(answer, chosen, threshold):
    sent = answer.sent
    if sent.resolved_url:
        entry = {"source_url": sent.name, "resolved_url": sent.resolved_url}
    else:
        entry = {"image": sent.name}
    if sent.image is None:
        entry["error"] = {"code": 400, "description": sent.reason, "error_id": "input_error"}
        return entry
    entry["classifiers"] = [
        {
            "classifier_id": classifier_id,
            "name": task.name if task else "default",
            "classes": [
                {"class": label, "score": round(score, 6)}
                for label, score in prediction.scores
                if score >= threshold
            ],
        }
        for (classifier_id, task), prediction in zip(chosen, answer.predictions, strict=True)
    ]
    return entry


def parse_threshold(value):
    if value in (None, ""):
        return DEFAULT_THRESHOLD
    try:
        threshold = float(value)
    except ValueError:
        threshold = -1
    if not 0 <= threshold <= 1:
        raise WatsonError(400, f"threshold must be a number from 0.0 to 1.0, not {value!r}.")
    return threshold


def chosen_classifiers(request, fields):
    """[(classifier_id, task or None for the general classifier)]"""
    ids = [part.strip() for part in fields.get("classifier_ids", "").split(",") if part.strip()]
    if not ids:
        owners = {part.strip().lower() for part in fields.get("owners", "ibm").split(",")}
        if "me" in owners:
            mine = Task.objects.filter(owner=request.owner).exclude(watson_id=None)
            ids += [task.watson_id for task in mine.exclude(active_run=None).order_by("id")]
        if "ibm" in owners or not ids:
            ids.append("default")
    chosen = []
    for classifier_id in dict.fromkeys(ids):
        if classifier_id == "default":
            chosen.append(("default", None))
            continue
        task = owned_classifier(request, classifier_id, Task.answering)
        if task.active_run is None:
            raise WatsonError(
                400, f"Classifier {classifier_id} is still {classifier_json(task)['status']}."
            )
        chosen.append((classifier_id, task))
    return chosen
