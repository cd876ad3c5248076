"""Bounds the code shows (issue 38): with sizes saying the table is big, a load of one
owner's rows (``filter(cable=self)``), of rows whose keys are in hand, of one row per value of
a column (``distinct("pulp_type")``), of the first few of each partition (a window rank
filter) is no finding; a boto3 collection's ``.objects`` is no Django queryset. The same
table loaded whole is."""

from __future__ import annotations

from pathlib import Path

import pytest

from membound.lint import LintConfig, lint_paths
from membound.lint.sizes import TableSizes

MODELS = """\
import boto3
from django.db import models
from django.db.models import F, Window
from django.db.models.functions import Rank


class Cable(models.Model):
    label = models.TextField()


class Termination(models.Model):
    cable = models.ForeignKey(Cable, on_delete=models.CASCADE)
    termination_id = models.IntegerField()
    pulp_type = models.TextField()

    def peers(self):
        return list(Termination.objects.filter(cable=self))  # BOUND owner

    def in_hand(self, ids):
        return list(Termination.objects.filter(termination_id__in=ids))  # BOUND in hand

    def types(self):
        return list(Termination.objects.distinct("pulp_type"))  # BOUND distinct

    def top(self):
        ranked = Termination.objects.annotate(rank=Window(Rank(), partition_by=[F("cable")]))
        return list(ranked.filter(rank__lte=3))  # BOUND top three

    def everything(self):
        return list(Termination.objects.all())  # WHOLE

    def of_either(self, other):
        if isinstance(other, Cable):
            filters = {"cable_id": other.id}
        else:
            filters = {"termination_id": other.id}
        return list(Termination.objects.filter(**filters))  # BOUND one owner in each branch

    def of_either_or_a_type(self, other, kind):
        if isinstance(other, Cable):
            filters = {"cable_id": other.id}
        else:
            filters = {"pulp_type": kind}
        return list(Termination.objects.filter(**filters))  # SHARED one branch a shared value


def keys(bucket_name):
    s3 = boto3.resource("s3")
    return [o.key for o in s3.Bucket(bucket_name).objects.all()]  # BOUND not a queryset
"""


@pytest.fixture
def reported(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "dcim").mkdir()
    (tmp_path / "dcim" / "models.py").write_text(MODELS)
    sizes = TableSizes(tables={"dcim_termination": 600_000, "dcim_cable": 300_000}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    lines = MODELS.splitlines()
    return {lines[f.row - 1].split("# ")[-1]: f.kind for f in (*result.findings, *result.hints)}


def test_bounds_in_the_code_are_no_findings_whatever_the_size(reported: dict[str, str]) -> None:
    assert {"WHOLE": "finding", "SHARED one branch a shared value": "finding"} == reported


MORE = """\
from django.db import models


class Account(models.Model):
    email = models.TextField()


class Product(models.Model):
    sku = models.TextField()


def login(email):
    return list(Account.objects.filter(email__iexact=email))  # BOUND one e-mail


def upload(skus):
    return list(Product.objects.filter(sku__in=skus))  # BOUND skus in hand


def everyone():
    return list(Account.objects.all())  # WHOLE
"""

MIGRATION = """\
def forwards(apps, schema_editor):
    Theme = apps.get_model(app_label="appearance", model_name="Theme")
    for theme in Theme.objects.all():  # SMALL by its size
        theme.save()
"""


def test_identifying_values_in_hand_and_keyword_get_model(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "models.py").write_text(MORE)
    (tmp_path / "appearance" / "migrations").mkdir(parents=True)
    (tmp_path / "appearance" / "migrations" / "0002_x.py").write_text(MIGRATION)
    sizes = TableSizes(
        tables={"shop_account": 10**6, "shop_product": 10**6, "appearance_theme": 5}, source="t"
    )
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    lines = {"models.py": MORE.splitlines(), "0002_x.py": MIGRATION.splitlines()}
    reported = {
        lines[Path(f.filename).name][f.row - 1].split("# ")[-1]: f.kind
        for f in (*result.findings, *result.hints)
    }
    assert {"WHOLE": "finding"} == reported


DJANGO_OWNERS = """\
from django.db import models


class PhotoSet(models.Model):
    name = models.TextField()

    def photos(self):
        return list(Image.objects.filter(photoset=self.pk))  # BOUND rows of the row in hand


class Image(models.Model):
    photoset = models.ForeignKey(PhotoSet, on_delete=models.CASCADE)
    added_by = models.ForeignKey("auth.User", on_delete=models.CASCADE)
    username = models.TextField()


def album(photo_set):
    return list(Image.objects.filter(photoset=photo_set))  # BOUND named like the owner


def added(profile):
    return list(Image.objects.filter(added_by=profile.user))  # BOUND one user in hand


def taken(user):
    return list(Image.objects.filter(username__startswith=user.username))  # BOUND one name


def of_sets(company):
    sets = PhotoSet.objects.filter(company=company).values_list("id", flat=True)
    return list(Image.objects.filter(photoset_id__in=sets))  # BOUND a query of one owner


def by_letter():
    return list(Image.objects.filter(username__startswith="a"))  # WHOLE a literal prefix


def roster(cursor, event):
    cursor.execute("SELECT id FROM app_image WHERE photoset_id=%d" % event.id)
    return cursor.fetchall()  # BOUND one key formatted in
"""


def test_rows_of_one_owner_however_the_owner_is_written(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "models.py").write_text("import sqlite3\n" + DJANGO_OWNERS)
    sizes = TableSizes(tables={"app_image": 10**6, "app_photoset": 10**6}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    lines = ("import sqlite3\n" + DJANGO_OWNERS).splitlines()
    reported = {lines[f.row - 1].split("# ")[-1]: f.kind for f in (*result.findings, *result.hints)}
    assert {"WHOLE a literal prefix": "finding"} == reported


SQLALCHEMY_OWNERS = """\
from sqlalchemy import Column, Integer, String, and_, distinct, func, tuple_
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class OutputFile(Base):
    __tablename__ = "output_file"
    id = Column(Integer, primary_key=True)
    entity_id = Column(Integer)
    task_id = Column(Integer)
    comment = Column(Integer)
    bucket = Column(String)
    key = Column(String)
    name = Column(String)
    revision = Column(Integer)


def last_of_entity(session, entity_id):
    latest = session.query(OutputFile.name, func.max(OutputFile.revision).label("top"))
    statement = latest.group_by(OutputFile.name).subquery()
    query = session.query(OutputFile).join(
        statement,
        and_(OutputFile.entity_id == entity_id, OutputFile.name == statement.c.name),
    )
    return query.all()  # BOUND owner in the join condition


def last_of_task(session, task_id):
    latest = session.query(OutputFile.name).filter(OutputFile.task_id == task_id)
    statement = latest.subquery()
    query = session.query(OutputFile).join(statement, OutputFile.name == statement.c.name)
    return query.all()  # BOUND joined to one owner's rows


def linked(session, comment_ids):
    query = session.query(OutputFile).filter(OutputFile.comment.in_(comment_ids))
    return query.all()  # BOUND named like the ids in hand


def stored(session, keys):
    query = session.query(OutputFile).filter(tuple_(OutputFile.bucket, OutputFile.key).in_(keys))
    return query.all()  # BOUND keys in hand


def of_entity_tasks(session, entity_id):
    tasks = session.query(OutputFile.task_id).filter(OutputFile.entity_id == entity_id)
    return session.query(OutputFile).filter(OutputFile.task_id.in_(tasks)).all()  # BOUND sub


def names(session):
    return session.query(OutputFile).with_entities(distinct(OutputFile.name)).all()  # BOUND


def everything(session):
    return session.query(OutputFile).all()  # WHOLE
"""


def test_sqlalchemy_joins_subqueries_and_lists_of_one_owner(tmp_path: Path) -> None:
    (tmp_path / "files.py").write_text(SQLALCHEMY_OWNERS)
    sizes = TableSizes(tables={"output_file": 10**6}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    lines = SQLALCHEMY_OWNERS.splitlines()
    reported = {lines[f.row - 1].split("# ")[-1]: f.kind for f in (*result.findings, *result.hints)}
    assert {"WHOLE": "finding"} == reported


SELF_NAMED = """\
from django.db import migrations


def pick(qualifications, Qualification):
    qualifications = Qualification.objects.filter(id__in=qualifications)
    return {q.uuid for q in qualifications}  # BOUND the ids passed in


def walk(apps, schema_editor):
    for shift in apps.get_model("core", "Shift").objects.all():  # WHOLE every shift
        shift.save()
"""


def test_a_query_filtered_on_its_own_name_is_judged_and_the_file_checked(tmp_path: Path) -> None:
    """``x = X.objects.filter(id__in=x)`` names itself: following the query behind the name
    went round without end (the file was one MB000 "too deeply nested", its other loads
    unchecked)."""
    (tmp_path / "core" / "migrations").mkdir(parents=True)
    (tmp_path / "core" / "migrations" / "0002_x.py").write_text(SELF_NAMED)
    sizes = TableSizes(tables={"core_qualification": 10**6, "core_shift": 10**6}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    assert () == result.errors
    lines = SELF_NAMED.splitlines()
    reported = {lines[f.row - 1].split("# ")[-1]: f.kind for f in result.findings}
    assert {"WHOLE every shift": "finding"} == reported


ARCHIVE = """\
from django.db import models


class MailingList(models.Model):
    name = models.TextField()


class State(models.Model):
    label = models.TextField()


class Email(models.Model):
    mailinglist = models.ForeignKey(MailingList, on_delete=models.CASCADE)
    status = models.ForeignKey(State, on_delete=models.CASCADE)
    subject = models.TextField()


def month(mlist, begin, end):
    return list(Email.objects.filter(mailinglist=mlist, date__gte=begin))  # BOUND one list


def month_by_key(mlist):
    return list(Email.objects.filter(mailinglist_id=mlist.pk))  # BOUND one list by its key


def unlisted():
    return list(Email.objects.filter(mailinglist=None))  # NONE every row without a list


def in_state(state):
    return list(Email.objects.filter(status=state))  # SHARED a state many rows share
"""

MOVED = """\
from django.db import migrations


def move(apps, schema_editor):
    Old = apps.get_model("autoreply", "Alias")
    for old in Old.objects.all():  # DELETED another app's model of the same name
        old.save()
"""


def test_a_foreign_key_fixed_to_a_value_in_hand_is_one_owners_rows(tmp_path: Path) -> None:
    """A filter on a field the model declares a ``ForeignKey`` keeps one owner's rows, whatever
    the names say (``mailinglist=mlist``: the names share nothing); not when it is ``None``,
    nor when the key is a shared attribute. And ``apps.get_model("autoreply", "Alias")`` in a
    migration is not the ``admin`` app's ``Alias``: its size is not that table's."""
    files = {
        "archive/models.py": ARCHIVE,
        "admin/models.py": "from django.db import models\n\n\nclass Alias(models.Model):\n"
        "    address = models.TextField()\n",
        "autoreply/migrations/0003_move.py": MOVED,
    }
    tables = {"archive_email": 2_500_000, "admin_alias": 13_000, "archive_mailinglist": 250}
    assert {
        "NONE every row without a list": "finding",
        "SHARED a state many rows share": "finding",
        "DELETED another app's model of the same name": "hint",
    } == _labels_reported(tmp_path, files, tables)


QUEUES = """\
from django.db import models


class Thread(models.Model):
    starting_email = models.TextField(null=True)
    finished = models.BooleanField(default=False)
    kind = models.TextField()


def repair():
    for thread in Thread.objects.filter(starting_email__isnull=True):  # DRAINED field set
        thread.starting_email = "first"
        thread.save()


def finish():
    todo = Thread.objects.filter(finished=False)
    for thread in todo:  # DRAINED through a name
        thread.finished = True
        thread.save()


def purge():
    for thread in Thread.objects.filter(finished=True):  # DRAINED deleted
        thread.delete()


def remove_kind(kind):
    for thread in Thread.objects.filter(kind=kind):  # GROUP one kind's rows, deleted once
        thread.delete()


def reattach():
    for thread in Thread.objects.filter(starting_email__isnull=True):  # KEPT rows stay
        if thread.pk % 2:
            thread.touch()
"""

QUEUE_MIGRATION = """\
from django.db import migrations


def forwards(apps, schema_editor):
    Thread = apps.get_model("forum", "Thread")
    for thread in Thread.objects.filter(finished=False):  # ONCE a migration runs once
        thread.finished = True
        thread.save()
"""


def test_a_queue_the_loop_drains_is_no_whole_table_load(tmp_path: Path) -> None:
    """A job that loads the rows in one state and takes each out of it (sets the field it
    filters on, or deletes the row) loads what came in since its last run: no finding, however
    big the table. A migration runs once; a loop that leaves rows in the state loads them again."""
    files = {"forum/models.py": QUEUES, "forum/migrations/0002_finish.py": QUEUE_MIGRATION}
    assert {
        "KEPT rows stay": "finding",
        "ONCE a migration runs once": "finding",
        "GROUP one kind's rows, deleted once": "finding",
    } == _labels_reported(tmp_path, files, {"forum_thread": 700_000})


def _labels_reported(root: Path, files: dict[str, str], tables: dict[str, int]) -> dict[str, str]:
    """Write ``files`` (path under ``root`` → text) and lint them with ``tables`` as sizes: the
    label of each line reported (its comment after ``# ``) → ``finding`` or ``hint``."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    result = lint_paths([str(root)], LintConfig(sizes=TableSizes(tables=tables, source="t")))
    lines = {name: text.splitlines() for name, text in files.items()}
    return {
        lines[Path(f.filename).resolve().relative_to(root.resolve()).as_posix()][f.row - 1].split(
            "# "
        )[-1]: f.kind
        for f in (*result.findings, *result.hints)
    }


REQUEST_AND_LISTS = """\
from django.db import models


class Attachment(models.Model):
    orig_filename = models.TextField()
    status = models.TextField()


class History(models.Model):
    file_attachments = models.ManyToManyField(Attachment)
    attachment = models.ForeignKey(Attachment, on_delete=models.CASCADE)


def by_name(request):
    rows = Attachment.objects.filter(orig_filename=request.GET.get("file-name"))
    return list(rows)  # BOUND one value the request names


def by_status(request):
    return list(Attachment.objects.filter(status=request.GET["status"]))  # SHARED a state


def histories(file_attachments):
    found = History.objects.filter(file_attachments__in=file_attachments)
    return list(found)  # BOUND the attachments in hand


def of_some(speaker_attachments):
    found = History.objects.filter(attachment__in=speaker_attachments)
    return list(found)  # BOUND a list named for its items


def of_all():
    return list(History.objects.filter(file_attachments__in=Attachment.objects.all()))  # WHOLE
"""


def test_a_value_the_request_names_and_a_list_named_for_its_items(tmp_path: Path) -> None:
    """``filter(orig_filename=request.GET.get("file-name"))`` loads the rows of one value the
    request names; ``file_attachments__in=file_attachments`` those of a list in hand named for
    what the relation holds. A state the request names is a share, a subquery no list."""
    files = {"attachments/models.py": REQUEST_AND_LISTS}
    sizes = {"attachments_attachment": 10**6, "attachments_history": 10**6}
    reported = _labels_reported(tmp_path, files, sizes)
    assert {"SHARED a state": "finding", "WHOLE": "finding"} == reported


MEMOIZED = """\
from django.db import models
from django.utils.functional import cached_property


class Condition(models.Model):
    source = models.TextField()


class Value(models.Model):
    text = models.TextField()


class View:
    @cached_property
    def conditions(self):
        return list(Condition.objects.all())  # CONFIG

    @cached_property
    def values(self):
        return list(Value.objects.all())  # CONTENT
"""


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        (None, {}),
        ({"app_condition": 400, "app_value": 4_000_000}, {"CONTENT": "finding"}),
    ],
    ids=["no sizes", "sizes"],
)
def test_a_memoized_whole_result_is_judged_by_its_tables_size(
    tmp_path: Path, sizes: dict[str, int] | None, expected: dict[str, str]
) -> None:
    """MB302 (a ``@cached_property`` returning every row) is a whole-table load: a finding
    only with evidence that the table is big (round 8: 400 questionnaire conditions were
    the default run's one finding); outside a batch job without sizes, nothing."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "models.py").write_text(MEMOIZED)
    given = TableSizes(tables=sizes, source="t") if sizes else None
    result = lint_paths([str(tmp_path)], LintConfig(sizes=given))
    lines = MEMOIZED.splitlines()
    assert expected == {
        lines[f.row - 1].split("# ")[-1]: f.kind
        for f in (*result.findings, *result.hints)
        if f.code == "MB302"
    }


MEMOIZED_FETCH = """\
import sqlite3


class Report:
    def rows(self, conn):
        cur = conn.cursor()
        cur.execute("SELECT * FROM big_events")
        if self._rows is None:
            self._rows = cur.fetchall()  # EVENTS
        return self._rows
"""


def test_a_memoized_fetchall_takes_the_size_of_the_table_its_sql_reads(tmp_path: Path) -> None:
    """``self._rows = cur.fetchall()`` after ``cur.execute("SELECT * FROM big_events")``: the
    statement executed last on that cursor names the table whose size decides."""
    (tmp_path / "report.py").write_text(MEMOIZED_FETCH)
    sizes = TableSizes(tables={"big_events": 10**6}, source="t")
    result = lint_paths([str(tmp_path)], LintConfig(sizes=sizes))
    memoized = [f for f in (*result.findings, *result.hints) if f.code == "MB302"]
    assert [(9, "finding")] == [(f.row, f.kind) for f in memoized]
    assert "big_events" in memoized[0].message


WINDOWS = """\
import datetime
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Renewal(models.Model):
    renew_dt = models.DateTimeField()
    kind = models.TextField()


def last_days(days):
    since = timezone.now() - timedelta(days=days)
    return list(Renewal.objects.filter(renew_dt__gte=since))  # BOUND since a moment of the clock


def to_come():
    return list(Renewal.objects.filter(renew_dt__gte=timezone.now()))  # BOUND the future


def one_month(year, month):
    start = datetime.date(year, month, 1)
    end = first_of_next_month(year, month)
    found = Renewal.objects.filter(renew_dt__gte=start).filter(renew_dt__lt=end)
    return list(found)  # BOUND one month, both ends from one point


def one_week(week):
    days = week_range(week)
    either = Q(renew_dt__gte=days[0], renew_dt__lte=days[1]) | Q(renew_dt__range=(days[0], days[1]))
    return list(Renewal.objects.filter(either & Q(kind="x")))  # BOUND a window in each branch


def picked(start_dt, end_dt):
    return list(Renewal.objects.filter(renew_dt__gte=start_dt, renew_dt__lte=end_dt))  # CHOSEN


def older(since):
    return list(Renewal.objects.filter(renew_dt__lt=since))  # OLDER every row before a date


def newer(since):
    return list(Renewal.objects.filter(renew_dt__gte=since))  # NEWER a date a caller picks


def one_side_only(start):
    either = Q(renew_dt__gte=timezone.now()) | Q(kind="x")
    return list(Renewal.objects.filter(either))  # HALF one branch has no window


def outside():
    return list(Renewal.objects.exclude(renew_dt__gte=timezone.now()))  # OUTSIDE the past


def first_of_next_month(year, month):
    return datetime.date(year + month // 12, month % 12 + 1, 1)


def week_range(week):
    return week, week
"""

SA_WINDOWS = """\
from datetime import timedelta

from sqlalchemy import Column, DateTime, Integer, select
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class AuthLog(Base):
    __tablename__ = "auth_log"
    id = Column(Integer, primary_key=True)
    timestamp = Column(DateTime)


def lock_window(session, window_end, window_seconds):
    window_start = window_end - timedelta(seconds=window_seconds)
    conditions = [AuthLog.timestamp >= window_start, AuthLog.timestamp <= window_end]
    return session.scalars(select(AuthLog).where(*conditions)).all()  # BOUND a sliding window


def one_day(session, day):
    found = session.query(AuthLog).filter(AuthLog.timestamp.between(day_start(day), day_end(day)))
    return found.all()  # BOUND between two ends of one day


def day_start(day):
    return day


def day_end(day):
    return day


def export(session, start, end):
    return session.query(AuthLog).filter(AuthLog.timestamp.between(start, end)).all()  # CHOSEN
"""


def test_a_time_window_the_code_fixes_is_no_whole_table_load(tmp_path: Path) -> None:
    """Rows after a moment read from the clock, or between two bounds the code derives from one
    point (a month, a week, a window before its end), are a window's share, however big the
    table; a range a caller picks, one side of a caller's date, a window in only one branch of
    an OR, and ``exclude`` of a window stay loads."""
    files = {"members/models.py": WINDOWS, "members/audit.py": SA_WINDOWS}
    sizes = {"members_renewal": 10**6, "auth_log": 10**6}
    assert {
        "CHOSEN": "finding",
        "OLDER every row before a date": "finding",
        "NEWER a date a caller picks": "finding",
        "HALF one branch has no window": "finding",
        "OUTSIDE the past": "finding",
    } == _labels_reported(tmp_path, files, sizes)
