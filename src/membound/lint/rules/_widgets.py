"""Which Django form widgets render a choice field's every option into the page."""

from __future__ import annotations

import ast

__all__ = ["OPTION_WIDGETS", "lists_no_options"]

#: Widgets that render every choice as an option: Django's selects, check boxes and radio
#: buttons, the admin's ``FilteredSelectMultiple`` (a filter over the full list, in the browser),
#: django-select2's ``Select2Widget``/``Select2MultipleWidget`` (the same). Any other widget
#: named (a hidden or text input, an autocomplete, ``ModelSelect2Widget`` fetching a page by
#: AJAX, a project's popup picker) lists none.
OPTION_WIDGETS = frozenset(
    {"Select", "SelectMultiple", "CheckboxSelectMultiple", "RadioSelect", "NullBooleanSelect",
     "FilteredSelectMultiple", "Select2Widget", "Select2MultipleWidget", "Select2TagWidget"}
)  # fmt: skip


def lists_no_options(widget: ast.expr) -> bool:
    """``widget`` (``HiddenInput``, ``autocomplete.ModelSelect2(url=…)``, a project's
    ``ContactChoiceWidget``) is none of :data:`OPTION_WIDGETS`: it renders no option list."""
    while isinstance(widget, ast.Call):
        widget = widget.func
    name = getattr(widget, "attr", None) or getattr(widget, "id", "")
    return name not in OPTION_WIDGETS
