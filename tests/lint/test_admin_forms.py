"""A Django admin's add and change pages render each foreign key and many-to-many field of the
model as a select holding every row of the related table (issue 38): with sizes that say the
table is big, the admin is a finding; a field the admin hides or shows as a raw id, an
autocomplete or read-only, a choice the model limits, a setting the rules cannot read, or a
small table is none."""

from __future__ import annotations

from pathlib import Path

from membound.lint import LintConfig, LintResult, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
from django.conf import settings
from django.db import models


class Colour(models.Model):
    name = models.TextField()


class Document(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    colour = models.ForeignKey(Colour, on_delete=models.CASCADE)
    title = models.TextField()


class Revision(models.Model):
    document = models.ForeignKey("Document", on_delete=models.CASCADE)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, editable=False, on_delete=models.CASCADE
    )


class Share(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE)
    readers = models.ManyToManyField("accounts.Member")
    staff = models.ForeignKey(
        "accounts.Member", limit_choices_to={"is_staff": True}, on_delete=models.CASCADE
    )
    watchers = models.ManyToManyField("accounts.Member", through="Watch", related_name="+")
"""

ACCOUNTS = """\
from django.contrib.auth.models import AbstractUser


class Member(AbstractUser):
    pass
"""

ADMIN = """\
from django.contrib import admin
from django import forms

from app.models import Colour, Document, Revision, Share
from app.bases import ProjectAdmin


class RevisionInline(admin.TabularInline):
    model = Revision  # its link to the document is hidden


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):  # line 13: owner
    inlines = [RevisionInline]


class ShareAdmin(admin.ModelAdmin):  # line 17: readers
    list_display = ("document",)
    raw_id_fields = ("document",)


class QuietShareAdmin(admin.ModelAdmin):
    autocomplete_fields = ["readers"]
    readonly_fields = ["document"]


class FieldsetShareAdmin(admin.ModelAdmin):
    fieldsets = ((None, {"fields": ("staff",)}),)  # its choices are limited


class ProjectShareAdmin(ProjectAdmin):  # a base of the project: may set anything
    pass


class CodedShareAdmin(admin.ModelAdmin):
    def get_form(self, request, obj=None, **kwargs):
        return super().get_form(request, obj, **kwargs)


class ShareForm(forms.ModelForm):
    class Meta:
        model = Share
        fields = ["document"]
        widgets = {"document": forms.TextInput()}


class FormShareAdmin(admin.ModelAdmin):
    form = ShareForm


class ArchiveShareAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def register(*models):  # the project's own: it may set anything
    def wrap(cls):
        cls.raw_id_fields = ("document",)
        return admin.site.register(models, cls)

    return wrap


@register(Share)
class WrappedShareAdmin(admin.ModelAdmin):
    pass


admin.site.register(Share, ShareAdmin)
admin.site.register(Share, ArchiveShareAdmin)
admin.site.register(Share, QuietShareAdmin)
admin.site.register(Share, FieldsetShareAdmin)
admin.site.register(Share, ProjectShareAdmin)
admin.site.register(Share, CodedShareAdmin)
admin.site.register(Share, FormShareAdmin)
admin.site.register(Revision)  # line 79: the default admin, document
admin.site.register(Colour)
"""

SETTINGS = 'AUTH_USER_MODEL = "accounts.Member"\n'
WITH_ADMIN = 'INSTALLED_APPS = [\n    "django.contrib.admin",\n    "app",\n]\n'
ADMIN_SWITCHED_OFF = 'INSTALLED_APPS = [\n    # "django.contrib.admin",\n    "app",\n]\n'


def _result(tmp_path: Path, sizes: TableSizes | None, settings: str = WITH_ADMIN) -> LintResult:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for package, files in (
        ("app", {"models.py": MODELS, "admin.py": ADMIN, "bases.py": "class ProjectAdmin: ...\n"}),
        ("accounts", {"models.py": ACCOUNTS}),
        ("site", {"settings.py": SETTINGS, "base.py": settings}),
    ):
        folder = tmp_path / package
        folder.mkdir()
        (folder / "__init__.py").write_text("", encoding="utf-8")
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    return lint_paths([str(tmp_path)], LintConfig(sizes=sizes))


BIG = {"accounts_member": 40_000, "app_document": 300_000, "app_colour": 12}


def test_an_admin_form_lists_every_row_of_a_big_related_table(tmp_path: Path) -> None:
    result = _result(tmp_path, TableSizes(tables=BIG, source="t"))
    by_row = {f.row: f.message for f in result.findings if f.code == "MB101"}
    assert set(by_row) == {13, 17, 79}, sorted(by_row)
    # the swappable user model, read from the settings
    assert "(`owner`), ≈40k rows of `accounts_member`" in by_row[13]
    assert "(`readers`)" in by_row[17]
    assert "(`document`), ≈300k rows" in by_row[79]
    assert "`raw_id_fields` or `autocomplete_fields`" in by_row[79]


def test_small_related_tables_and_no_sizes_say_nothing(tmp_path: Path) -> None:
    small = {"accounts_member": 40, "app_document": 300, "app_colour": 12}
    assert _result(tmp_path / "small", TableSizes(tables=small, source="t")).findings == ()
    nothing = _result(tmp_path / "none", None)
    assert nothing.findings == ()
    assert nothing.hints == ()


def test_large_models_make_it_a_finding_without_a_size(tmp_path: Path) -> None:
    sizes = TableSizes(tables={"app_colour": 12}, source="t")
    config = LintConfig(sizes=sizes, large_models=("Document",))
    _result(tmp_path, None)  # writes the project
    result = lint_paths([str(tmp_path)], config)
    rows = {f.row for f in result.findings if f.code == "MB101"}
    assert rows == {79}, rows


def test_a_project_that_never_installs_the_admin_serves_none(tmp_path: Path) -> None:
    sizes = TableSizes(tables=BIG, source="t")
    assert _result(tmp_path, sizes, ADMIN_SWITCHED_OFF).findings == ()


def test_a_test_suites_settings_do_not_switch_the_admin_off(tmp_path: Path) -> None:
    """Only the application's settings say whether it serves the admin: a test suite's often
    install less (and code that reads ``settings.INSTALLED_APPS`` sets nothing)."""
    sizes = TableSizes(tables=BIG, source="t")
    reads = "from django.conf import settings\nAPPS = settings.INSTALLED_APPS\n"
    _result(tmp_path, sizes, reads)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "settings.py").write_text(ADMIN_SWITCHED_OFF, encoding="utf-8")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert {f.row for f in result.findings if f.code == "MB101"} == {13, 17, 79}
