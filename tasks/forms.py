import uuid

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from tasks import imports, runs, sidebar, trainer_words
from tasks.models import Category, Task, check_operating_threshold
from trainer.choices import DEFAULT_BASE_MODEL, DEFAULT_MODE, DEFAULT_TIME_BUDGET


class TaskForm(forms.ModelForm):
    class Meta:
        model = Task
        fields = ["name"]
        widgets = {"name": forms.TextInput(attrs={"placeholder": _("e.g. Ants or bees")})}


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "is_negative"]
        widgets = {"name": forms.TextInput(attrs={"placeholder": _("New category")})}
        error_messages = {"name": {"required": _("Give the category a name.")}}

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = self.task.categories.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(
                gettext("This task already has a category named “%(name)s”.") % {"name": name}
            )
        return name

    def clean_is_negative(self):
        negative = self.cleaned_data["is_negative"]
        others = self.task.categories.filter(is_negative=True).exclude(pk=self.instance.pk)
        if negative and others.exists():
            raise ValidationError(
                gettext("“%(name)s” already holds the negative examples of this task.")
                % {"name": others.first().name}
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
            raise ValidationError(gettext("That is not a list of image codes.")) from None

    def validate(self, value):
        if self.required and not value:
            raise ValidationError(gettext("Select some photos first."))


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
        error_messages={"invalid": _("Give the lowest score to accept, from 0 to 100 %.")},
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
        choices=[(KEEP_ONE, _("Keep one")), (KEEP_ALL, _("Keep all")), (MOVE, _("Move"))]
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
            raise ValidationError(gettext("That group of near-copies is no longer there."))
        return found[0]

    def clean(self):
        cleaned = super().clean()
        group, action = cleaned.get("group"), cleaned.get("action")
        if group and action == self.KEEP_ONE:
            kept = [image for image in group.images if image.code == cleaned.get("image")]
            if not kept:
                raise ValidationError(gettext("Choose the photo to keep."))
            cleaned["image"] = kept[0]
        if group and action == self.MOVE:
            try:
                destination = sidebar.entry(self.task, cleaned.get("category") or "")
            except sidebar.UnknownEntry:
                raise ValidationError(gettext("Choose the category to move them to.")) from None
            if destination == sidebar.ALL:
                raise ValidationError(gettext("Choose the category to move them to."))
            cleaned["category"] = destination if isinstance(destination, Category) else None
        return cleaned

    def save(self):
        """What was done, in a sentence."""
        group, action = self.cleaned_data["group"], self.cleaned_data["action"]
        if action == self.KEEP_ONE:
            kept = self.cleaned_data["image"]
            deleted = group.keep_only(kept)
            return ngettext(
                "Kept %(name)s; deleted %(count)s near-copy.",
                "Kept %(name)s; deleted %(count)s near-copies.",
                deleted,
            ) % {"name": kept.display_name, "count": deleted}
        if action == self.KEEP_ALL:
            group.keep_all()
            return gettext("Kept all %(count)s photos: they are no longer shown as copies.") % {
                "count": len(group.images)
            }
        destination = self.cleaned_data["category"]
        group.move_to(destination)
        return gettext("Moved %(count)s photos to %(where)s.") % {
            "count": len(group.images),
            "where": destination or gettext("Unsorted"),
        }


def destination(task, key):
    """The category of task that photos can be moved or added to under a side-bar key,
    or None for Unsorted."""
    try:
        chosen = sidebar.entry(task, key)
    except sidebar.UnknownEntry:
        chosen = None
    if not sidebar.is_destination(chosen):
        raise ValidationError(gettext("That category is not in this task."))
    return None if chosen == sidebar.UNSORTED else chosen


class MoveForm(SelectionForm):
    category = forms.CharField(error_messages={"required": _("Choose where to move them.")})

    def clean_category(self):
        return destination(self.task, self.cleaned_data["category"])

    def save(self):
        return self.selected_images().move_to(self.cleaned_data["category"])


class AddPhotoForm(forms.Form):
    """A photo tried on the preview page, added to a category: stored there, or, when the
    task holds it already, moved there, so that pressing a second category corrects the
    first."""

    ADDED, MOVED, ALREADY, REJECTED = "added", "moved", "already", "rejected"

    photo = forms.FileField(error_messages={"required": _("Choose the photo to add.")})
    category = forms.CharField(error_messages={"required": _("Choose the category to add it to.")})

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def clean_photo(self):
        photo = self.cleaned_data["photo"]
        if imports.is_zip(photo):
            raise ValidationError(gettext("Add one photo at a time, not a zip."))
        return photo

    def clean_category(self):
        return destination(self.task, self.cleaned_data["category"])

    def save(self):
        """(what happened: one of ADDED, MOVED, ALREADY, REJECTED; a sentence that says it)."""
        category = self.cleaned_data["category"]
        where = category or gettext("Unsorted")
        report = imports.import_files(self.task, [self.cleaned_data["photo"]], category=category)
        (sent,) = report.files
        if sent.outcome == "rejected":
            return self.REJECTED, f"{sent.name}: {sent.reason}"
        if sent.outcome == "added":
            return self.ADDED, gettext("Added %(name)s to %(where)s.") % {
                "name": sent.name,
                "where": where,
            }
        stored = sent.image
        if stored.category == category:
            return self.ALREADY, gettext("%(name)s is already in %(where)s.") % {
                "name": sent.name,
                "where": where,
            }
        self.task.images.filter(pk=stored.pk).move_to(category)
        return self.MOVED, gettext("Moved %(name)s from %(origin)s to %(where)s.") % {
            "name": sent.name,
            "origin": stored.category or gettext("Unsorted"),
            "where": where,
        }


class OperatingPointForm(forms.Form):
    """The top score below which a ready run's model answers "needs review"."""

    threshold = forms.FloatField(
        validators=[check_operating_threshold],
        error_messages={"required": _("Choose when the model should answer.")},
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
        error_messages={"required": _("Choose the model that answers.")},
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
        trainer_words.BASE_MODEL_CHOICES, DEFAULT_BASE_MODEL, label=_("Base model")
    )
    mode = choice_field(trainer_words.MODE_CHOICES, DEFAULT_MODE, label=_("Mode"))
    time_budget = choice_field(
        trainer_words.TIME_BUDGET_CHOICES,
        DEFAULT_TIME_BUDGET,
        coerce=int,
        label=_("Time budget (accurate mode)"),
    )

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.task = task

    def start(self):
        """(run, runs.Started); raises runs.TrainingRefused or runs.QueueUnavailable."""
        return runs.start(self.task, **self.cleaned_data)


class WebhookForm(forms.Form):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://ci.example.org/hooks/vize"}),
        help_text=_(
            "Called when a run of this task is ready or fails. It must be reachable "
            "on the internet: addresses inside this site's network are refused."
        ),
    )
