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

SETTINGS = (
    'AUTH_USER_MODEL = "accounts.Member"\n'
    'INSTALLED_APPS += ["site.blog.apps.BlogConfig"]  # another file, dotted from another root\n'
)
WITH_ADMIN = 'INSTALLED_APPS = [\n    "django.contrib.admin",\n    "app",\n    "accounts",\n]\n'
ADMIN_SWITCHED_OFF = (
    'INSTALLED_APPS = [\n    # "django.contrib.admin",\n    "app",\n]\n'
    'CONFIG_MODEL = "GymAdminConfig"  # a model\'s name, no app\n'
)


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
    assert "(`owner`, ≈40k rows of `accounts_member` (t))" in by_row[13]
    assert "(`readers`, ≈40k rows" in by_row[17]
    assert "(`document`, ≈300k rows" in by_row[79]
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


NOTES_MODELS = """\
from django.conf import settings
from django.db import models

from app.models import Document


class Comment(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    reply_to = models.ForeignKey("self", null=True, on_delete=models.CASCADE)


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE
    )
"""

NOTES_ADMIN = """\
from django import forms
from django.contrib import admin

from app.base_forms import ProjectForm
from app.models import Document
from notes.models import Comment, Profile


class CommentInline(admin.TabularInline):  # line 9: author, reply_to (not its parent link)
    model = Comment


class DocumentNotesAdmin(admin.ModelAdmin):
    inlines = [CommentInline]
    raw_id_fields = ("owner", "colour")


class ProfileAdmin(admin.ModelAdmin):  # line 18: a one-to-one primary key is still a select
    pass


class ChangingForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["author"].widget = forms.HiddenInput()


class InitCommentAdmin(admin.ModelAdmin):
    form = ChangingForm


class ProjectFormCommentAdmin(admin.ModelAdmin):
    form = type("F", (ProjectForm,), {})


class ExcludingForm(forms.ModelForm):
    class Meta:
        model = Comment
        exclude = ["author", "reply_to"]


class ExcludeCommentAdmin(admin.ModelAdmin):  # line 42: the admin's exclude wins: author shown
    form = ExcludingForm
    exclude = ["document", "reply_to"]


class ArchivedCommentAdmin(admin.ModelAdmin):
    has_add_permission = has_change_permission = lambda *args: False


admin.site.register(Document, DocumentNotesAdmin)
admin.site.register(Profile, ProfileAdmin)
admin.site.register(Comment, InitCommentAdmin)
admin.site.register(Comment, ProjectFormCommentAdmin)
admin.site.register(Comment, ExcludeCommentAdmin)
admin.site.register(Comment, ArchivedCommentAdmin)
admin.site.register(Comment, raw_id_fields=["document", "author", "reply_to"])
"""


def test_inlines_keys_forms_and_options_django_applies(tmp_path: Path) -> None:
    """From a review: inlines are judged, a one-to-one primary key is a select, an admin's
    ``exclude`` replaces its form's, and whatever a form's ``__init__`` or base, a lambda
    refusing changes, or ``register(…, raw_id_fields=…)`` may change is left out."""
    settings = 'INSTALLED_APPS = ["django.contrib.admin.apps.SimpleAdminConfig", "app", "notes"]\n'
    _result(tmp_path, None, settings)
    annotated = 'AUTH_USER_MODEL: str = "accounts.Member"\n'
    (tmp_path / "site" / "settings.py").write_text(annotated, encoding="utf-8")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "__init__.py").write_text("", encoding="utf-8")
    (notes / "models.py").write_text(NOTES_MODELS, encoding="utf-8")
    (notes / "admin.py").write_text(NOTES_ADMIN, encoding="utf-8")
    (tmp_path / "app" / "base_forms.py").write_text("class ProjectForm: ...\n", encoding="utf-8")
    sizes = TableSizes(tables={**BIG, "notes_comment": 90_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    by_row = {f.row: f.message for f in result.findings if f.filename.endswith("notes/admin.py")}
    assert set(by_row) == {9, 18, 42}, by_row
    assert "(`author`, ≈40k rows of `accounts_member` (t); `reply_to`, ≈90k rows" in by_row[9]
    assert "(`user`, ≈40k rows of `accounts_member`" in by_row[18]
    assert "(`author`, ≈40k rows" in by_row[42]


BLOG_MODELS = """\
from django.db import models

from blog import topics as t


class Author(models.Model):
    name = models.TextField()


class Article(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    editor = models.ForeignKey(Author, related_name="+", on_delete=models.CASCADE)
    body = models.TextField()
    tag = models.ForeignKey("taggit.Tag", on_delete=models.CASCADE)
    topic = models.ForeignKey(t.Topic, on_delete=models.CASCADE)  # a module's, no app label


class Note(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)


class Tag(models.Model):
    name = models.TextField()
"""

BLOG_ADMIN = """\
from django import forms
from django.contrib import admin
from django.contrib.auth.forms import UserChangeForm

from app.base_forms import ProjectForm, ArticleMeta
from blog.models import Article as Art, Note as Nt


class UserChangeForm(UserChangeForm):  # a class of the name it imports: no loop
    pass


class BaseArticleForm(forms.ModelForm):
    class Meta:
        model = Art
        fields = ["body"]


class ArticleForm(BaseArticleForm):  # the base's Meta: only body
    pass


class ForeignForm(ProjectForm):
    pass


class MetaForm(forms.ModelForm):
    class Meta(ArticleMeta):
        model = Art


class NoteInline(admin.TabularInline):  # line 32: author; article is the parent link
    model = Nt
    raw_id_fields: tuple[str, ...] = ()


@admin.register(Art)
class ArticleAdmin(admin.ModelAdmin):  # line 38: topic
    inlines = [NoteInline]
    raw_id_fields: tuple[str, ...] = ("author", "editor")  # annotated, still read


class InheritedFormAdmin(admin.ModelAdmin):
    form = ArticleForm


class ForeignFormAdmin(admin.ModelAdmin):
    form = ForeignForm


class MetaFormAdmin(admin.ModelAdmin):
    form = MetaForm


class LoopFormAdmin(admin.ModelAdmin):  # line 55: author, editor (exclude None hides none)
    form = UserChangeForm
    exclude = None


admin.site.register(Art, InheritedFormAdmin)
admin.site.register(Art, ForeignFormAdmin)
admin.site.register(Art, MetaFormAdmin)
admin.site.register(Art, LoopFormAdmin)
admin.site.register(Nt, admin.ModelAdmin)  # line 64: the default admin, article and author
"""


def test_forms_inherit_aliases_resolve_and_apps_keep_their_tables(tmp_path: Path) -> None:
    """From a second review: a form's bases and their ``Meta`` count, a form of a name it
    imports is no loop, a model imported under an alias is its class (its parent link stays
    hidden), annotated settings are read, ``"taggit.Tag"`` is that app's table and not the
    project's ``Tag``, and ``large-models`` is said as such whatever a size says."""
    _result(tmp_path, None)
    blog = tmp_path / "blog"
    blog.mkdir()
    (blog / "__init__.py").write_text("", encoding="utf-8")
    (blog / "models.py").write_text(BLOG_MODELS, encoding="utf-8")
    (blog / "admin.py").write_text(BLOG_ADMIN, encoding="utf-8")
    topics = "from django.db import models\n\n\nclass Topic(models.Model):\n    pass\n"
    (blog / "topics.py").write_text(topics, encoding="utf-8")
    base_forms = "class ProjectForm: ...\nclass ArticleMeta: ...\n"
    (tmp_path / "app" / "base_forms.py").write_text(base_forms, encoding="utf-8")
    tables = {
        "blog_author": 40,
        "blog_article": 2_000_000,
        "blog_tag": 700_000,
        "blog_topic": 900_000,
    }
    config = LintConfig(sizes=TableSizes(tables=tables, source="t"), large_models=("Author",))
    result = lint_paths([str(tmp_path)], config)
    assert not [f for f in result.findings if f.code == "MB000"]
    by_row = {f.row: f.message for f in result.findings if f.filename.endswith("blog/admin.py")}
    assert set(by_row) == {32, 38, 55, 64}, by_row
    assert "form of `Note` renders" in by_row[32]  # not the alias `Nt`
    assert "(`author`, a model declared large)" in by_row[32]
    assert "(`topic`, ≈900k rows of `blog_topic` (t))" in by_row[38]  # author, editor raw
    assert "`editor`, a model declared large; `topic`, ≈900k rows of `blog_topic`" in by_row[55]
    assert "`article`, ≈2.0M rows of `blog_article`" in by_row[64]
    assert "blog_tag" not in "".join(by_row.values())


FILTER_ADMIN = """\
from django.contrib import admin
from django.contrib.admin.filters import RelatedFieldListFilter as RF

from app.models import Document, Revision, Share
from app.filters import TitleFilter


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    raw_id_fields = ("owner",)  # the form lists no user, the filter does
    list_filter = (  # line 11
        "owner",
        "colour",  # a small table
        "title",
        TitleFilter,
    )


class ReadOnlyShareAdmin(admin.ModelAdmin):
    list_filter = [("readers", admin.RelatedFieldListFilter)]  # line 20

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UsedOnlyShareAdmin(admin.ModelAdmin):
    list_filter = [
        ("readers", admin.RelatedOnlyFieldListFilter),  # the rows the shares use
        "document__owner",  # a lookup through a relation: not judged
        "staff",  # its choices are limited
    ]
    autocomplete_fields = ["readers", "document"]


class CodedShareAdmin(admin.ModelAdmin):
    list_filter = ["document"]
    raw_id_fields = ["document", "readers"]

    def get_list_filter(self, request):
        return self.list_filter if request.user.is_superuser else []


admin.site.register(Share, ReadOnlyShareAdmin)
admin.site.register(Share, UsedOnlyShareAdmin)
admin.site.register(Share, CodedShareAdmin)


class FilteringShareAdmin(admin.ModelAdmin):
    list_filter = ["readers"]
    autocomplete_fields = ["readers", "document"]


class QuietBase(admin.ModelAdmin):
    list_filter = []


class QuietFirstAdmin(QuietBase, FilteringShareAdmin):  # the first base's filters win
    pass


class AliasedShareAdmin(admin.ModelAdmin):
    list_filter = [("readers", RF)]  # line 65
    autocomplete_fields = ["readers", "document"]


admin.site.register(Share, QuietFirstAdmin)
admin.site.register(Share, AliasedShareAdmin)


class AuditRevisionAdmin(admin.ModelAdmin):
    list_filter = ["author"]  # line 74: not editable, still a filter of every user
    readonly_fields = ["document"]


admin.site.register(Revision, AuditRevisionAdmin)
"""


def test_a_list_filter_on_a_relation_lists_every_related_row(tmp_path: Path) -> None:
    """Django's ``RelatedFieldListFilter`` renders one link per row of the related model on
    every view of the change list, read-only admins included; its own filter classes, a
    project's, lookups through relations and a ``get_list_filter`` are not judged."""
    _result(tmp_path, None)
    (tmp_path / "app" / "admin.py").write_text(FILTER_ADMIN, encoding="utf-8")
    (tmp_path / "app" / "filters.py").write_text("class TitleFilter: ...\n", encoding="utf-8")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=TableSizes(tables=BIG, source="t")))
    by_row = {f.row: f.message for f in result.findings if f.code == "MB101"}
    assert set(by_row) == {11, 20, 65, 74}, by_row
    assert "change list of `Document`" in by_row[11]
    assert "(`owner`, ≈40k rows of `accounts_member` (t))" in by_row[11]
    assert "colour" not in by_row[11]
    assert "(`readers`, ≈40k rows of `accounts_member` (t))" in by_row[20]
    legacy = tmp_path / "legacy"  # an app no settings here name: the deployment's may
    legacy.mkdir()
    (legacy / "__init__.py").write_text("", encoding="utf-8")
    (legacy / "admin.py").write_text(FILTER_ADMIN, encoding="utf-8")
    again = lint_paths([str(tmp_path)], LintConfig(sizes=TableSizes(tables=BIG, source="t")))
    assert {(f.filename.rsplit("/", 2)[-2], f.row) for f in again.findings} == {
        ("app", 11),
        ("app", 20),
        ("app", 65),
        ("app", 74),
        ("legacy", 11),
        ("legacy", 20),
        ("legacy", 65),
        ("legacy", 74),
    }
    small = {"accounts_member": 40, "app_document": 300, "app_colour": 12}
    quiet = lint_paths([str(tmp_path)], LintConfig(sizes=TableSizes(tables=small, source="t")))
    assert [f for f in quiet.findings if f.code == "MB101"] == []


def test_relations_come_from_abstract_models_of_other_modules(tmp_path: Path) -> None:
    """After round 15 (django-oscar's ``Order(AbstractOrder)``): a model's relations declared
    on an abstract model of another module, and on that model's own base in a third module,
    are its form's; a base whose name two modules define is unknown, so its model is not
    judged, and a project's class named like Django's ``Model`` is no base of ``models.Model``."""
    _result(tmp_path, None)
    shop = tmp_path / "shop"
    shop.mkdir()
    files = {
        "__init__.py": "",
        "mixins.py": (
            "from django.conf import settings\nfrom django.db import models\n\n\n"
            "class Owned(models.Model):\n"
            "    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)\n\n"
            "    class Meta:\n        abstract = True\n"
        ),
        "abstract_models.py": (
            "from django.db import models\n\nfrom shop.mixins import Owned\n\n\n"
            "class AbstractOrder(Owned):\n"
            '    basket = models.ForeignKey("app.Document", on_delete=models.CASCADE)\n\n'
            "    class Meta:\n        abstract = True\n\n\n"
            "class AbstractLine(models.Model):\n"
            '    order = models.ForeignKey("app.Document", on_delete=models.CASCADE)\n\n'
            "    class Meta:\n        abstract = True\n\n\n"
            "class AbstractReceipt(models.Model):\n"
            '    paid = models.ForeignKey("app.Document", on_delete=models.CASCADE)\n\n'
            "    class Meta:\n        abstract = True\n"
        ),
        "till/__init__.py": "",
        "till/models.py": (
            "from shop import abstract_models\n\n\n"
            "class Receipt(abstract_models.AbstractReceipt):  # a module's attribute\n    pass\n"
        ),
        "refund/__init__.py": "",
        "refund/models.py": (
            "from shop.abstract_models import *\n\n\n"
            "class Refund(AbstractReceipt):  # a name a star import brings\n    pass\n"
        ),
        "other.py": (
            "from django.conf import settings\nfrom django.db import models\n\n\n"
            "class AbstractLine(models.Model):  # a second class of that name\n"
            "    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)\n\n"
            "    class Meta:\n        abstract = True\n"
            "\n\nclass Model(models.Model):  # a project's base named like Django's\n"
            "    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)\n\n"
            "    class Meta:\n        abstract = True\n"
        ),
        "models.py": (
            "from django.db import models\n\n"
            "from shop.abstract_models import AbstractLine, AbstractOrder\n\n\n"
            "class Order(AbstractOrder):\n    pass\n\n\n"
            "class Line(AbstractLine):\n    pass\n\n\n"
            "class Note(models.Model):  # Django's Model, not the project's\n    pass\n"
        ),
        "admin.py": (
            "from django.contrib import admin\n\nfrom shop.models import Line, Note, Order\n"
            "from shop.till.models import Receipt\nfrom shop.refund.models import Refund\n\n"
            "admin.site.register(Order)  # line 7\nadmin.site.register(Line)\n"
            "admin.site.register(Note)\nadmin.site.register(Receipt)  # line 10\n"
            "admin.site.register(Refund)  # line 11\n"
        ),
    }
    for name, text in files.items():
        (shop / name).parent.mkdir(exist_ok=True)
        (shop / name).write_text(text, encoding="utf-8")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=TableSizes(tables=BIG, source="t")))
    by_row = {f.row: f.message for f in result.findings if f.filename.endswith("shop/admin.py")}
    assert set(by_row) == {7, 10, 11}, by_row
    assert "(`owner`, ≈40k rows of `accounts_member` (t); `basket`, ≈300k rows" in by_row[7]
    assert "(`paid`, ≈300k rows of `app_document` (t))" in by_row[10]
    assert "(`paid`, ≈300k rows of `app_document` (t))" in by_row[11]
