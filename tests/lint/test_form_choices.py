"""A Django choice field renders one option per row of its queryset on every page that shows
the form (issue 38): ``ModelChoiceField(queryset=User.objects.all())`` over a big table is a
load, judged by the table's size like any other. A widget that lists no options, a queryset the
form replaces in ``__init__``, a small table, or no sizes at all (request code) is no finding."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, LintResult, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.db import models


class Member(models.Model):
    name = models.TextField()
    active = models.BooleanField(default=True)


class Colour(models.Model):
    name = models.TextField()
"""

FORMS = """\
from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple

from app.models import Colour, Member
from app.widgets import MemberPickerWidget


class UserModelChoiceField(forms.ModelChoiceField):
    pass


class PickForm(forms.Form):
    owner = forms.ModelChoiceField(queryset=Member.objects.all())  # replaced in __init__
    members = forms.ModelMultipleChoiceField(Member.objects.filter(active=True))  # line 14
    watchers = forms.ModelMultipleChoiceField(  # line 15
        Member.objects.all(), widget=FilteredSelectMultiple("w", False)
    )
    merged = UserModelChoiceField(Member.objects.all())  # line 18: a project's subclass
    hidden = forms.ModelChoiceField(Member.objects.all(), widget=forms.HiddenInput)
    picked = forms.ModelChoiceField(Member.objects.all(), widget=MemberPickerWidget())
    colour = forms.ModelChoiceField(queryset=Colour.objects.all())  # a small table
    chosen = forms.ModelChoiceField(queryset=Member.objects.filter(pk__in=[1, 2]))
    scoped = forms.ModelChoiceField(queryset=Member.objects.all())  # replaced below

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scoped"].queryset = Member.objects.filter(team=team)
        self.fields["owner"].queryset = Member.objects.all()  # line 28


class MemberForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = ["name"]
        widgets = {"reviewer": MemberPickerWidget()}
        labels = {"mentor": "Mentor"}  # not a widget

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviewer"].queryset = Member.objects.all()  # its widget lists none
        self.fields["mentor"].queryset = Member.objects.exclude(active=False)  # line 41


class InviteForm(forms.Form):
    invited = forms.ModelChoiceField(queryset=Member.objects.all())  # typed, not listed
    listed = forms.ModelChoiceField(queryset=Member.objects.all())  # line 46

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invited"].widget = forms.TextInput(attrs={"placeholder": "name"})
        self.fields["listed"].widget = forms.Select()


class StaffForm(forms.ModelForm):
    declared = forms.ModelChoiceField(queryset=Member.objects.all())  # line 55
    maybe = forms.ModelChoiceField(queryset=Member.objects.all())  # line 56

    class Meta:
        model = Member
        fields = ["name"]
        widgets = {"declared": forms.HiddenInput()}  # not applied to a declared field

    def __init__(self, *args, staff=False, **kwargs):
        super().__init__(*args, **kwargs)
        if not staff:
            self.fields["maybe"].widget = forms.HiddenInput()  # staff still get the select
"""


def _result(tmp_path: Path, sizes: TableSizes | None) -> LintResult:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("", encoding="utf-8")
    (app / "models.py").write_text(MODELS, encoding="utf-8")
    (app / "widgets.py").write_text("class MemberPickerWidget: ...\n", encoding="utf-8")
    (app / "forms.py").write_text(FORMS, encoding="utf-8")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert not result.hints, [h.row for h in result.hints]
    return result


def test_a_choice_field_over_a_big_table_renders_every_row(tmp_path: Path) -> None:
    sizes = TableSizes(tables={"app_member": 250_000, "app_colour": 40}, source="t")
    found = {f.row for f in _result(tmp_path, sizes).findings if f.code == "MB101"}
    assert found == {14, 15, 18, 28, 41, 46, 55, 56}, sorted(found)


def test_without_sizes_a_form_is_request_code_and_says_nothing(tmp_path: Path) -> None:
    assert _result(tmp_path, None).findings == ()


def test_the_message_says_what_renders_the_rows(tmp_path: Path) -> None:
    sizes = TableSizes(tables={"app_member": 250_000}, source="t")
    by_row = {f.row: f.message for f in _result(tmp_path, sizes).findings}
    assert "`ModelMultipleChoiceField`, which renders every row as an option" in by_row[14]
    assert "≈250k rows" in by_row[14]
    assert "module-level" not in by_row[14]
    assert "the form field `owner`, which renders every row as an option" in by_row[28]
