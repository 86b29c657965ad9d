from django import template
from django.utils import dateformat, formats, timezone
from django.utils.translation import gettext, pgettext_lazy

from tasks import trainer_words

register = template.Library()

# The ways pages write a moment, each in the reader's language ("2 Dec 2026" in English,
# "2026年12月2日" in Chinese): Django's date format characters, translated as a whole.
MOMENTS = {
    "day": pgettext_lazy("date format", "j M Y"),
    "minute": pgettext_lazy("date format", "j M Y, H:i"),
    "recent": pgettext_lazy("date format", "j M, H:i"),
    "second": pgettext_lazy("date format", "j M, H:i:s"),
}


@register.filter
def when(value, style):
    """A date and time in the reader's language and the site's time zone."""
    if not value:
        return ""
    return dateformat.format(timezone.localtime(value), str(MOMENTS[style]))


@register.filter
def percent(value, digits=1):
    """0.9673 -> "96.7 %" ("96,7 %" in French, "96.7%" in Chinese)."""
    if value is None or value == "":
        return "–"
    return gettext("%(number)s %%") % {"number": localized(float(value) * 100, int(digits))}


@register.filter
def seconds(value):
    """A duration or a number of seconds, as a person says it."""
    total = value.total_seconds() if hasattr(value, "total_seconds") else float(value or 0)
    if total < 90:
        number = localized(total, 0 if total >= 10 else 1)
        return gettext("%(number)s s") % {"number": number}
    return gettext("%(number)s min") % {"number": localized(total / 60, 0)}


@register.filter
def translated(text):
    """A run's stored reason or evaluation method, in the reader's language."""
    return trainer_words.translated(text)


@register.filter
def mode_name(mode, short=False):
    """fast -> "fast mode" (or "fast" given short), in the reader's language."""
    return (trainer_words.MODE_WORDS if short else trainer_words.MODE_NAMES).get(mode, mode)


@register.filter
def get_item(mapping, key):
    return mapping.get(key)


@register.filter
def score_difference(value):
    """The largest difference between two models' scores: 0, "< 0.0001", or 4 places."""
    if value == 0:
        return "0"
    return "< " + localized(0.0001, 4) if value < 1e-4 else localized(value, 4)


def localized(number, digits):
    """number rounded to digits places, with the reader's decimal mark (Django's
    number_format cuts a float's digits instead of rounding them)."""
    return formats.number_format(round(number, digits), digits)
