"""The shapes of the JSON API's requests and answers (tasks/api.py), which its OpenAPI
schema publishes. The answers read the model objects the endpoints return: a field
named as the model's attribute is read as it is; the others say where they come from
(an alias or a `resolve_` method), so each answer's fields are listed only here."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import AfterValidator

from tasks.models import CATEGORY_NAME_MAX_LENGTH, TrainingRun
from trainer import choices


def printable(text):
    """PostgreSQL refuses NUL in text, and no name needs a control character.

    Not the rule of `imports.printable`, which cleans the names found in uploaded files
    and zip archives: one bad name must not stop an upload, and nobody is there to
    retype it. A name typed into the API is refused instead, so that the caller sees
    the error and nothing is stored, or looked up, under a name other than the one sent."""
    if any(ord(character) < 32 for character in text):
        raise ValueError("must not contain control characters")
    return text


# Every string the API stores or looks up by.
Text = Annotated[str, AfterValidator(printable)]
TaskName = Annotated[Text, Field(min_length=1, max_length=100)]
CategoryName = Annotated[Text, Field(min_length=1, max_length=CATEGORY_NAME_MAX_LENGTH)]


class Error(Schema):
    detail: str


class TaskIn(Schema):
    name: TaskName
    categories: list[CategoryName] = Field(default_factory=list, max_length=100)


class TaskPatch(Schema):
    name: TaskName


class TaskOut(Schema):
    code: UUID
    name: str
    created: datetime
    updated: datetime
    image_count: int
    category_count: int
    active_run: UUID | None = Field(description="The run whose model answers classify.")
    current_run: UUID | None = Field(description="The run queued or training now.")

    @staticmethod
    def resolve_active_run(task):
        return task.active_run.code if task.active_run else None

    @staticmethod
    def resolve_current_run(task):
        current = task.current_run()
        return current.code if current else None


class CategoryIn(Schema):
    name: CategoryName
    is_negative: bool = Field(False, description="Holds examples of none of the categories.")


class CategoryPatch(Schema):
    name: CategoryName | None = None
    is_negative: bool | None = None


class CategoryOut(Schema):
    code: UUID
    name: str
    is_negative: bool
    image_count: int


class Suggestion(Schema):
    category: str = Field(description="The suggested category's name.")
    score: float = Field(description="Its probability, from 0 to 1.")


class ImageOut(Schema):
    code: UUID
    name: str = Field(alias="original_name")
    category: str | None = Field(description="The category's name; null is Unsorted.")
    suggestion: Suggestion | None = Field(
        description="For an Unsorted image: the category a head fitted on the labelled "
        "images suggests. For a labelled image: the category that a head fitted without "
        "it prefers to its own (a suspected mislabel), or null when the heads agree with "
        "its label. Refreshed in the background after each change; null while there is "
        "none (fewer than two categories hold photos, or not computed yet)."
    )
    format: str
    width: int
    height: int
    size: int
    sha256: str
    created: datetime

    @staticmethod
    def resolve_category(image):
        return image.category.name if image.category else None

    @staticmethod
    def resolve_suggestion(image):
        if image.suggestion is None:
            return None
        return {"category": image.suggestion.name, "score": image.suggestion_score}


class ImagePage(Schema):
    count: int
    images: list[ImageOut]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class Added(Schema):
    name: str
    image: ImageOut


class Duplicate(Schema):
    name: str
    reason: str
    image: ImageOut


class Rejected(Schema):
    name: str
    reason: str


class NearDuplicate(Schema):
    name: str
    of: UUID = Field(description="The code of the image in the task it looks like a copy of.")
    category: str | None = Field(description="That image's category; null is Unsorted.")

    @staticmethod
    def resolve_of(outcome):
        return outcome.copy_of.code

    @staticmethod
    def resolve_category(outcome):
        return outcome.copy_of.category.name if outcome.copy_of.category else None


class UploadReport(Schema):
    added: list[Added]
    duplicates: list[Duplicate]
    rejected: list[Rejected]
    near_duplicates: list[NearDuplicate] = Field(
        description="Added images that look like copies of images already in the task "
        "(resized, re-encoded, slightly cropped, mirrored): stored, and told."
    )


class DuplicateGroupOut(Schema):
    images: list[UUID] = Field(description="The codes of the near-copies, oldest first.")
    categories: list[str | None] = Field(
        description="Each image's category, in the same order; null is Unsorted."
    )
    conflict: bool = Field(description="Whether the copies sit in different categories.")

    @staticmethod
    def resolve_images(group):
        return [image.code for image in group.images]

    @staticmethod
    def resolve_categories(group):
        return [image.category.name if image.category else None for image in group.images]


class Duplicates(Schema):
    groups: list[DuplicateGroupOut]


class Selection(Schema):
    images: list[UUID] = Field(min_length=1, max_length=10_000)


class Move(Selection):
    category: CategoryName | None = Field(description="A category's name; null: Unsorted.")


class Moved(Schema):
    moved: int
    not_found: list[UUID]


class Deleted(Schema):
    deleted: int
    not_found: list[UUID]


class Kept(Schema):
    kept: int
    not_found: list[UUID]


class ReviewItem(Schema):
    code: UUID
    category: str | None = Field(description="The category's name; null is Unsorted.")
    suggested: str | None = Field(
        description="The category the photo seems to belong to, if any.", alias="suggestion"
    )
    score: float = Field(
        description="What ranks the queue: for mislabels, the probability of the suggested "
        "category from a head fitted without the photo (highest first); for unsure, the "
        "suggestion's lead over the next category (lowest first); for outliers, the "
        "distance to the nearest category over the labelled photos' usual one (above 1, "
        "highest first)."
    )

    @staticmethod
    def resolve_category(image):
        return image.category.name if image.category else None

    @staticmethod
    def resolve_suggestion(image):
        return image.suggestion.name if image.suggestion else None


class ReviewPage(Schema):
    count: int
    items: list[ReviewItem]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class RunIn(Schema):
    base_model: Literal[tuple(choices.BASE_MODELS)] = Field(
        choices.DEFAULT_BASE_MODEL,
        description="; ".join(
            f"{name}: {base.title}, {base.summary}" for name, base in choices.BASE_MODELS.items()
        ),
    )
    mode: Literal[tuple(choices.MODES)] = Field(
        choices.DEFAULT_MODE,
        description="; ".join(f"{name}: {mode.summary}" for name, mode in choices.MODES.items()),
    )
    time_budget: Literal[tuple(choices.TIME_BUDGETS)] = Field(
        choices.DEFAULT_TIME_BUDGET, description="Seconds of fine-tuning in accurate mode."
    )


class OperatingPointIn(Schema):
    threshold: float = Field(
        description="Below this top score the model answers “needs review”: 0 up to, not "
        "including, 1; 0 answers every photo."
    )


class ServedModelIn(Schema):
    int8: bool = Field(
        description="true: the int8 model answers (where the run's formats offer one); "
        "false: model.onnx."
    )


class OperatingPointOut(Schema):
    threshold: float = Field(description="Below this top score, classify answers needs_review.")
    suggested: float | None = Field(
        description="The lowest threshold whose held-out precision reaches the target "
        "(metrics.operating_points)."
    )
    coverage: float | None = Field(
        description="The share of held-out photos answered at this threshold, where measured."
    )
    precision: float | None = Field(description="The precision of those answered, where measured.")


class RunOut(Schema):
    code: UUID
    status: TrainingRun.Status
    stage: str
    percent: int
    eta_seconds: int | None
    base_model: str
    mode: str
    reason: str
    active: bool = Field(description="Whether this run's model answers for the task.")
    created: datetime
    started: datetime | None
    finished: datetime | None
    metrics: dict | None = Field(description="Accuracy on held-out images and more, when ready.")
    export_ready: bool = Field(description="Whether GET .../export answers the model zip now.")
    export_failure: str = Field(
        description="Why the last packaging of the model zip failed; empty if it did not."
    )
    operating_point: OperatingPointOut | None = Field(
        description="When the model answers and when it asks for review; null until ready."
    )
    serves_int8: bool = Field(
        description="Whether the int8 model (model.int8.onnx) answers instead of model.onnx."
    )
    formats: dict = Field(
        description="The model's other formats and how each agrees with model.onnx on the "
        "run's held-out photos (file, format, agreement, max_score_difference, "
        "ms_per_photo; offered: false for an int8 model left out under 99 %); {} until "
        "the packaging job has built them."
    )

    @staticmethod
    def resolve_stage(run):
        return run.get_status_display()

    @staticmethod
    def resolve_active(run):
        return run.task.active_run_id == run.pk


class Score(Schema):
    category: str
    score: float


class Classified(Schema):
    name: str
    label: str | None = Field(
        description="The best category; null for none of them, or when it needs review."
    )
    needs_review: bool = Field(
        description="The top score is below the run's operating point: a person should look."
    )
    scores: list[Score]
    run: UUID | None = Field(description="The run that answered; null for general.")
    kept: UUID | None = Field(
        None,
        description="With keep=unsure or keep=all: the code of the image in the task's "
        "Unsorted that holds this photo (label it by moving it); null when not kept.",
    )
    not_kept: str | None = Field(
        None, description="Why a photo that keep asked for was not kept (a daily limit)."
    )


class Classification(Schema):
    images: list[Classified]


class WebhookIn(Schema):
    url: Annotated[Text, Field(min_length=1, max_length=500)]


class WebhookOut(Schema):
    code: UUID
    url: str
    created: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Signs every call (X-Vize-Signature); answered only here, never again."
    )


class DeliveryOut(Schema):
    created: datetime
    delivery: UUID = Field(description="The same for every attempt at one event.")
    event: str
    attempt: int
    status_code: int | None = Field(description="The HTTP status answered; null for none.")
    error: str = Field(description="What went wrong; empty when the call was taken (2xx).")
