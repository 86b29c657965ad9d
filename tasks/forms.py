import uuid

from django import forms
from django.core.exceptions import ValidationError

from tasks import imports, runs, sidebar
from tasks.models import Category, Task, check_operating_threshold
from trainer.choices import (
    BASE_MODELS,
    DEFAULT_BASE_MODEL,
    DEFAULT_MODE,
    DEFAULT_TIME_BUDGET,
    MODES,
    TIME_BUDGETS,
)


class TaskForm(forms.ModelForm):
    class Meta:
        model = Task
        fields = ["name"]
        widgets = {"name": forms.TextInput(attrs={"placeholder": "e.g. Ants or bees"})}


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "is_negative"]
        widgets = {"name": forms.TextInput(attrs={"placeholder": "New category"})}
        error_messages = {"name": {"required": "Give the category a name."}}

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = self.task.categories.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(f"This task already has a category named “{name}”.")
        return name

    def clean_is_negative(self):
        negative = self.cleaned_data["is_negative"]
        others = self.task.categories.filter(is_negative=True).exclude(pk=self.instance.pk)
        if negative and others.exists():
            raise ValidationError(
                f"“{others.first().name}” already holds the negative examples of this task."
            )
        return negative

    def save(self, commit=True):
        self.instance.task = self.task
        return super().save(commit)


class ImageCodesField(forms.Field):
    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        try:
            return [uuid.UUID(code) for code in value or []]
        except ValueError:
            raise ValidationError("That is not a list of image codes.") from None

    def validate(self, value):
        if self.required and not value:
            raise ValidationError("Select some photos first.")


class SelectionForm(forms.Form):
    """Images of one task picked in the grid; codes of other tasks simply match nothing."""

    images = ImageCodesField()

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def selected_images(self):
        return self.task.images.filter(code__in=self.cleaned_data["images"])


class AcceptSuggestionsForm(forms.Form):
    """The selected photos' suggestions (for a labelled photo, the category it seems to
    belong to instead), or with none selected, every Unsorted photo's that scores at
    least at_least percent."""

    images = ImageCodesField(required=False)
    at_least = forms.IntegerField(
        min_value=0,
        max_value=100,
        initial=90,
        error_messages={"invalid": "Give the lowest score to accept, from 0 to 100 %."},
    )

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def save(self):
        """(code, id of the category it left or None) of each photo moved."""
        if self.cleaned_data["images"]:
            chosen = self.task.images.filter(code__in=self.cleaned_data["images"])
            return chosen.accept_suggestions()
        unsorted = self.task.images.filter(category=None)
        return unsorted.accept_suggestions(self.cleaned_data["at_least"] / 100)


class DuplicateGroupForm(forms.Form):
    """One group of near-copies, and what to do with it: keep one photo (the others are
    deleted), keep all (they are not copies), or move all into one category."""

    KEEP_ONE, KEEP_ALL, MOVE = "keep_one", "keep_all", "move"

    group = forms.IntegerField()
    action = forms.ChoiceField(
        choices=[(KEEP_ONE, "Keep one"), (KEEP_ALL, "Keep all"), (MOVE, "Move")]
    )
    image = forms.UUIDField(required=False)
    category = forms.CharField(required=False)

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def clean_group(self):
        number = self.cleaned_data["group"]
        found = [group for group in self.task.duplicate_groups() if group.number == number]
        if not found:
            raise ValidationError("That group of near-copies is no longer there.")
        return found[0]

    def clean(self):
        cleaned = super().clean()
        group, action = cleaned.get("group"), cleaned.get("action")
        if group and action == self.KEEP_ONE:
            kept = [image for image in group.images if image.code == cleaned.get("image")]
            if not kept:
                raise ValidationError("Choose the photo to keep.")
            cleaned["image"] = kept[0]
        if group and action == self.MOVE:
            try:
                destination = sidebar.entry(self.task, cleaned.get("category") or "")
            except sidebar.UnknownEntry:
                raise ValidationError("Choose the category to move them to.") from None
            if destination == sidebar.ALL:
                raise ValidationError("Choose the category to move them to.")
            cleaned["category"] = destination if isinstance(destination, Category) else None
        return cleaned

    def save(self):
        """What was done, in a sentence."""
        group, action = self.cleaned_data["group"], self.cleaned_data["action"]
        if action == self.KEEP_ONE:
            kept = self.cleaned_data["image"]
            deleted = group.keep_only(kept)
            copies = "near-copy" if deleted == 1 else "near-copies"
            return f"Kept {kept.display_name}; deleted {deleted} {copies}."
        if action == self.KEEP_ALL:
            group.keep_all()
            return f"Kept all {len(group.images)} photos: they are no longer shown as copies."
        destination = self.cleaned_data["category"]
        group.move_to(destination)
        return f"Moved {len(group.images)} photos to {destination or 'Unsorted'}."


def destination(task, key):
    """The category of task that photos can be moved or added to under a side-bar key,
    or None for Unsorted."""
    try:
        chosen = sidebar.entry(task, key)
    except sidebar.UnknownEntry:
        chosen = None
    if not sidebar.is_destination(chosen):
        raise ValidationError("That category is not in this task.")
    return None if chosen == sidebar.UNSORTED else chosen


class MoveForm(SelectionForm):
    category = forms.CharField(error_messages={"required": "Choose where to move them."})

    def clean_category(self):
        return destination(self.task, self.cleaned_data["category"])

    def save(self):
        return self.selected_images().move_to(self.cleaned_data["category"])


class AddPhotoForm(forms.Form):
    """A photo tried on the preview page, added to a category: stored there, or, when the
    task holds it already, moved there, so that pressing a second category corrects the
    first."""

    ADDED, MOVED, ALREADY, REJECTED = "added", "moved", "already", "rejected"

    photo = forms.FileField(error_messages={"required": "Choose the photo to add."})
    category = forms.CharField(error_messages={"required": "Choose the category to add it to."})

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def clean_photo(self):
        photo = self.cleaned_data["photo"]
        if imports.is_zip(photo):
            raise ValidationError("Add one photo at a time, not a zip.")
        return photo

    def clean_category(self):
        return destination(self.task, self.cleaned_data["category"])

    def save(self):
        """(what happened: one of ADDED, MOVED, ALREADY, REJECTED; a sentence that says it)."""
        category = self.cleaned_data["category"]
        where = category or "Unsorted"
        report = imports.import_files(self.task, [self.cleaned_data["photo"]], category=category)
        (sent,) = report.files
        if sent.outcome == "rejected":
            return self.REJECTED, f"{sent.name}: {sent.reason}"
        if sent.outcome == "added":
            return self.ADDED, f"Added {sent.name} to {where}."
        stored = sent.image
        if stored.category == category:
            return self.ALREADY, f"{sent.name} is already in {where}."
        self.task.images.filter(pk=stored.pk).move_to(category)
        return self.MOVED, f"Moved {sent.name} from {stored.category or 'Unsorted'} to {where}."


class OperatingPointForm(forms.Form):
    """The top score below which a ready run's model answers "needs review"."""

    threshold = forms.FloatField(
        validators=[check_operating_threshold],
        error_messages={"required": "Choose when the model should answer."},
    )

    def __init__(self, *args, run, **kwargs):
        super().__init__(*args, **kwargs)
        self.run = run

    def save(self):
        """Whether the run took it: only a ready run answers."""
        return runs.choose_operating_point(self.run, self.cleaned_data["threshold"])


class ServedModelForm(forms.Form):
    """Which of a ready run's models answers: model.onnx, or its int8 form where the
    run's formats offer one."""

    model = forms.ChoiceField(
        choices=[("float", "float32"), ("int8", "int8")],
        error_messages={"required": "Choose the model that answers."},
    )

    def __init__(self, *args, run, **kwargs):
        super().__init__(*args, **kwargs)
        self.run = run

    def save(self):
        """Whether the run took it: only a ready run that offers int8 serves it."""
        return runs.choose_served_model(self.run, self.cleaned_data["model"] == "int8")


def choice_field(choices, default, coerce=str, **kwargs):
    """A choice that falls back to its default when the request leaves it out, as the
    API does, so that a script posting only the base model still trains."""
    return forms.TypedChoiceField(
        choices=choices,
        coerce=coerce,
        required=False,
        empty_value=default,
        initial=default,
        **kwargs,
    )


class TrainForm(forms.Form):
    """The training panel: the choices of trainer/choices.py, with their defaults."""

    base_model = choice_field(
        [(name, base.label) for name, base in BASE_MODELS.items()], DEFAULT_BASE_MODEL
    )
    mode = choice_field([(name, mode.label) for name, mode in MODES.items()], DEFAULT_MODE)
    time_budget = choice_field(
        list(TIME_BUDGETS.items()),
        DEFAULT_TIME_BUDGET,
        coerce=int,
        label="Time budget (accurate mode)",
    )

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def start(self):
        """(run, runs.Started); raises runs.TrainingRefused or runs.QueueUnavailable."""
        return runs.start(self.task, **self.cleaned_data)


class WebhookForm(forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://ci.example.org/hooks/vize"}),
        help_text="Called when a run of this task is ready or fails. It must be reachable "
        "on the internet: addresses inside this site's network are refused.",
    )
