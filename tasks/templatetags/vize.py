from django import template

register = template.Library()


@register.filter
def percent(value, digits=1):
    """0.9673 -> "96.7 %"."""
    if value is None or value == "":
        return "–"
    return f"{float(value) * 100:.{digits}f} %"


@register.filter
def seconds(value):
    """A duration or a number of seconds, as a person says it."""
    total = value.total_seconds() if hasattr(value, "total_seconds") else float(value or 0)
    if total < 90:
        return f"{total:.0f} s" if total >= 10 else f"{total:.1f} s"
    return f"{total / 60:.0f} min"


@register.filter
def get_item(mapping, key):
    return mapping.get(key)


@register.filter
def score_difference(value):
    """The largest difference between two models' scores: 0, "< 0.0001", or 4 places."""
    if value == 0:
        return "0"
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"
