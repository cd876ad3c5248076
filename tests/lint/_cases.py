# ruff: noqa: E501 - a snippet reads best as one source line per case
"""Snippets per rule: positives mark each expected finding's line with ``# HIT``."""

from __future__ import annotations

DJ = "from django.db import models\nfrom app.models import User, Order\n"
SA = "from sqlalchemy import select, text, create_engine\nfrom sqlalchemy.orm import Session\n"
DB = "import sqlite3\n"
PD = "import pandas as pd\n"

POSITIVE: dict[str, list[str]] = {
    "MB101": [
        DJ + "for u in User.objects.all():  # HIT\n    print(u)\n",
        DJ + "def f():\n    qs = User.objects.filter(active=True)\n"
        "    qs = qs.order_by('id')\n    for u in qs:  # HIT\n        print(u)\n",
        DJ + "n = len(Order.objects.exclude(paid=True))  # HIT\n",
        DJ + "rows = list(User.objects.values('id', 'email'))  # HIT\n",
        DJ + "def f():\n    return [b for b in Book.objects.all() if b.ok]  # HIT\n",
        DJ + "ids = set(User.objects.values_list('id', flat=True))  # HIT\n",
        DJ + "ids = list(Order.objects.values_list('customer_id', flat=True).distinct())  # HIT\n",
        DJ + "for i, u in enumerate(User.objects.all()):  # HIT\n    print(i, u)\n",
        DJ + "from django.db.models import Q\n"
        "for u in User.objects.filter(Q(is_staff=True) | Q(active=True)):  # HIT\n    print(u)\n"
        "for u in User.objects.filter(is_superuser=False):  # HIT\n    print(u)\n"
        "for o in Order.objects.filter(user__is_staff=True):  # HIT\n    print(o)\n",
        DJ + "def active():\n    return User.objects.filter(is_active=True)\n"
        "for u in active():  # HIT\n    print(u)\n",
        DJ + "class Command:\n    def get_queryset(self):\n        return Order.objects.all()\n"
        "    def handle(self):\n        for o in self.get_queryset().order_by('id'):  # HIT\n"
        "            print(o)\n",
    ],
    "MB102": [
        SA + "def f(session):\n    return session.query(User).filter(User.ok).all()  # HIT\n",
        SA + "def f(session):\n    return session.execute(select(User)).scalars().all()  # HIT\n",
        SA
        + "def f(session):\n    res = session.execute(select(User))\n    return res.all()  # HIT\n",
        DB + "def f(conn):\n    cur = conn.cursor()\n    cur.execute('SELECT * FROM t')\n"
        "    return cur.fetchall()  # HIT\n",
        DB + "rows = sqlite3.connect('x').execute('SELECT a FROM t').fetchall()  # HIT\n",
        SA + "def f(conn):\n    return conn.execute(text('SELECT * FROM big')).fetchall()  # HIT\n",
    ],
    "MB103": [
        "with open('f') as f:\n    for line in f.readlines():  # HIT\n        print(line)\n",
        "with open('f') as f:\n    lines = f.read().splitlines()  # HIT\n",
        "def f(p):\n    with open(p) as fh:\n        data = fh.read()  # HIT\n"
        "    for part in data.split(','):\n        print(part)\n",
        "n = len(open('f').read())  # HIT\n",
        "from pathlib import Path\nfor row in Path('x').read_text().splitlines():  # HIT\n    pass\n",
    ],
    "MB104": [
        PD + "df = pd.read_sql('SELECT * FROM t', conn)  # HIT\n",
        PD + "df = pd.read_sql(sql='SELECT * FROM t WHERE state = %s', con=conn)  # HIT\n",
        PD
        + "from pandas import read_sql_query\ndf = read_sql_query(q, conn, chunksize=None)  # HIT\n",
        PD + "df = pd.read_csv('big.csv')  # HIT\nfor i, row in df.iterrows():\n    print(row)\n",
        PD + "for row in pd.read_json('x.jsonl', lines=True).itertuples():  # HIT\n    pass\n",
    ],
    "MB201": [
        DJ + "out = []\nfor u in User.objects.all().iterator():\n    out.append(u)  # HIT\n",
        "import csv\nseen = set()\nwith open('f') as fh:\n    for row in csv.reader(fh):\n"
        "        seen.add(row[0])  # HIT\n",
        "from membound import find_each\nby_id = {}\nfor row in find_each(engine, t):\n"
        "    by_id[row.id] = row  # HIT\n",
        "def gen(p):\n    with open(p) as f:\n        for line in f:\n            yield line\nacc = []\nfor x in gen('f'):\n    acc += [x]  # HIT\n",
        "import itertools\ntotal = []\nfor batch in itertools.batched(range(10), 2):\n"
        "    for x in batch:\n        total.extend(batch)  # HIT\n",
        DB + "def f(conn):\n    rows = []\n    cur = conn.cursor()\n    for r in cur:\n"
        "        rows.append(r)  # HIT\n    return rows\n",
        DJ + "seen = {}\nfor o in Order.objects.iterator():\n    for t in TYPES:\n"
        "        seen[t.name, o.pk] = t  # HIT\n",
        DJ + "seen = set()\nfor o in Order.objects.iterator():\n    for t in o.types:\n"
        "        seen.add(t.name)  # HIT\n",
    ],
    "MB202": [
        "xs = list(range(n))  # HIT\n",
        "xs = tuple(range(0, 100_000))  # HIT\n",
        "xs = [*range(len(items))]  # HIT\n",
        "xs = list(range(10 * 10_000))  # HIT\n",
    ],
    "MB301": [
        "import functools\n@functools.cache  # HIT\ndef f(x):\n    return x\n",
        "from functools import lru_cache\n@lru_cache(maxsize=None)  # HIT\ndef f(x):\n    return x\n",
        "from functools import lru_cache\nclass A:\n    @lru_cache(None)  # HIT\n"
        "    def f(self, x):\n        return x\n",
        "import functools\ndef outer():\n    g = functools.cache(len)  # HIT\n    return g\n",
    ],
    "MB302": [
        DJ + "class V:\n    def rows(self):\n        if self._rows is None:\n"
        "            self._rows = list(User.objects.all())  # HIT\n        return self._rows\n",
        SA
        + "class R:\n    def rows(self, s):\n        self._rows = self._rows or s.query(User).all()  # HIT\n"
        "        return self._rows\n",
        DJ + "from django.utils.functional import cached_property\nclass V:\n    @cached_property\n"
        "    def users(self):\n        return list(User.objects.filter(ok=True))  # HIT\n",
        DB + "class R:\n    def rows(self, cur):\n        if not hasattr(self, '_r'):\n"
        "            self._r = cur.fetchall()  # HIT\n        return self._r\n",
    ],
    "MB401": [
        "import httpx\nfor url in urls:\n    c = httpx.Client()  # HIT\n    c.get(url)\n",
        "from flask import Flask\nfrom sqlalchemy import create_engine\napp = Flask(__name__)\n"
        "@app.route('/')\ndef index():\n    e = create_engine('sqlite://')  # HIT\n    return 'x'\n",
        "import boto3\ndef handler(event, context):\n    s3 = boto3.client('s3')  # HIT\n    return s3\n",
        "import requests\nfrom django.http import HttpResponse\ndef view(request):\n"
        "    s = requests.Session()  # HIT\n    return HttpResponse(s.get('u').text)\n",
        "import redis\nclass TimingMiddleware:\n    def __init__(self, get_response):\n"
        "        self.get_response = get_response\n    def __call__(self, request):\n"
        "        r = redis.Redis()  # HIT\n        return self.get_response(request)\n",
        "from fastapi import FastAPI\nfrom sqlalchemy.orm import sessionmaker\napp = FastAPI()\n"
        "@app.get('/x')\nasync def x():\n    S = sessionmaker()  # HIT\n    return 1\n",
        # another client is closed, not this one
        "import httpx\nfor url in urls:\n    c = httpx.Client()  # HIT\n    other.close()\n",
        # one client a turn, only the last one closed after the loop
        "import httpx\nfor url in urls:\n    c = httpx.Client()  # HIT\n    c.get(url)\nc.close()\n",
        # closed only when something failed
        "import httpx\nfrom flask import Flask\napp = Flask(__name__)\n@app.route('/')\n"
        "def index():\n    c = httpx.Client()  # HIT\n    try:\n        app.c = c\n"
        "    except Exception:\n        c.close()\n        raise\n",
        # a stack kept for the process: a client more on every request
        "import contextlib, httpx\nfrom flask import Flask\napp = Flask(__name__)\n"
        "stack = contextlib.ExitStack()\n@app.route('/')\ndef index():\n"
        "    c = stack.enter_context(httpx.Client())  # HIT\n    return c.get('u').text\n",
        # a close in another function closes another client
        "import httpx\nfor url in urls:\n    c = httpx.Client()  # HIT\n"
        "def other(c):\n    c.close()\n",
    ],
    "MB402": [
        "import copy\nfor sub in subscribers:\n    sub.send(copy.deepcopy(payload))  # HIT\n",
        "from copy import deepcopy\nclass F:\n    def fan(self, subs):\n        for s in subs:\n"
        "            s.send(deepcopy(self.template))  # HIT\n",
        "import copy\nclones = [copy.deepcopy(base) for _ in range(10)]  # HIT\n",
        "import copy\nwhile queue:\n    item = queue.pop()\n    cfg = copy.deepcopy(defaults)  # HIT\n",
    ],
    "MB501": [
        DJ + "emails = [u.email for u in User.objects.filter(active=True)]  # HIT\n",
        SA + "def f(session):\n    return {u.id for u in session.query(User).all()}  # HIT\n",
        SA + "def f(session):\n    return [u.name for u in session.scalars(select(User))]  # HIT\n",
        DJ + "def f():\n    qs = Order.objects.all()\n    return sum(o.total for o in qs)  # HIT\n",
    ],
}

NEGATIVE: dict[str, list[str]] = {
    "MB101": [
        DJ + "for u in User.objects.all()[:100]:\n    print(u)\n",
        # the distinct values of a shared attribute: a small domain
        DJ + "langs = list(Order.objects.values_list('language', flat=True).distinct())\n",
        DJ + "for t in Order.objects.values('content_type_id').distinct():\n    print(t)\n",
        DJ + "for u in User.objects.filter(a=1).iterator(chunk_size=500):\n    print(u)\n",
        DJ + "rows = list(User.objects.values('id')[:50])\n",
        DJ + "n = User.objects.count()\nu = User.objects.get(pk=1)\n",
        # No Django import: ``objects`` is just an attribute.
        "for u in registry.objects.all():\n    print(u)\n",
        DJ + "def f(qs):\n    for u in qs:\n        print(u)\n",
        # the accounts that run the application: a handful
        DJ + "for u in User.objects.filter(is_superuser=True):\n    print(u)\n",
        DJ + "for p in Profile.objects.filter(pk__is_superuser=True).exclude(x=1):\n    print(p)\n",
        # a query another function returns, bounded there, or picked among several returns
        DJ + "def first():\n    return User.objects.all()[:10]\nfor u in first():\n    print(u)\n",
        DJ + "def mine(user):\n    return Order.objects.filter(user=user)\n"
        "for o in mine(me):\n    print(o)\n",
        DJ + "def some(ok):\n    if ok:\n        return User.objects.all()\n    return []\n"
        "for u in some(x):\n    print(u)\n",
        DJ
        + "def f():\n    qs = User.objects.all()\n    qs = qs[:10]\n    for u in qs:\n        print(u)\n",
    ],
    "MB102": [
        SA + "def f(session):\n    return session.query(User).limit(10).all()\n",
        SA + "def f(session):\n    return session.execute(select(User).limit(5)).scalars().all()\n",
        DB
        + "def f(cur):\n    cur.execute('SELECT * FROM t LIMIT 10')\n    return cur.fetchall()\n",
        DB + "def f(cur):\n    cur.execute('SELECT count(*) FROM t')\n    return cur.fetchall()\n",
        SA + "def f(session):\n    return session.query(User).first()\n",
        DJ + "x = User.objects.all()\n",  # Django .all() is lazy: MB101's business
        "def f(cur):\n    return cur.fetchall()\n",  # no DB library imported
        SA + "def f(session):\n    stmt = select(User).limit(3)\n"
        "    return session.execute(stmt).all()\n",
    ],
    "MB103": [
        "import json\nwith open('f') as f:\n    data = json.load(f)\n",
        "with open('f', 'rb') as f:\n    magic = f.read(16)\n",
        "with open('f') as f:\n    for line in f:\n        print(line)\n",
        "with open('f') as f:\n    text = f.read()\nprint(text)\n",
        "def f(sock):\n    return sock.read().split()\n",  # not a file we can see
        "import json\nwith open('f') as f:\n    data = json.loads(f.read())\n",
    ],
    "MB104": [
        PD + "for chunk in pd.read_sql('SELECT * FROM t', conn, chunksize=1000):\n    pass\n",
        PD + "df = pd.read_csv('big.csv')\nprint(df.describe())\n",
        PD + "df = pd.read_csv('big.csv', nrows=100)\nfor r in df.iterrows():\n    pass\n",
        PD + "df = pd.read_json('x.json')\nfor r in df.iterrows():\n    pass\n",
        "def read_sql(q):\n    return q\nread_sql('SELECT 1')\n",  # not pandas
        PD + "opts = {}\ndf = pd.read_sql(q, conn, **opts)\n",
        # bounded queries: a LIMIT, an aggregate, one owner's rows by a parameter, an ORM owner
        PD + "df = pd.read_sql('SELECT * FROM t LIMIT 100', conn)\n",
        PD + "df = pd.read_sql('SELECT state, count(*) FROM t GROUP BY state', conn)\n",
        PD + "df = pd.read_sql(sql='SELECT * FROM t WHERE user_id = %s', con=conn, params=(u,))\n",
        PD
        + "def f(s, run_id):\n    q = s.query(Metric).filter(Metric.run_id == run_id)\n"
        + "    return pd.read_sql(q.statement, s.bind)\n",
    ],
    "MB201": [
        DJ + "for u in User.objects.all().iterator():\n    buf = []\n    buf.append(u)\n",
        # keys from a domain that does not depend on the streamed rows
        DJ + "seen = set()\nfor o in Order.objects.iterator():\n    for t in TYPES:\n"
        "        seen.add(t.name)\n        seen.add('all')\n",
        DJ + "buf = []\nfor u in User.objects.all().iterator():\n    buf.append(u)\n"
        "    if len(buf) >= 100:\n        flush(buf)\n        buf.clear()\n",
        "out = []\nfor x in items:\n    out.append(x)\n",  # not a streaming source
        "total = 0\nwith open('f') as fh:\n    for line in fh:\n        total += len(line)\n",
        "import collections\nlast = collections.deque(maxlen=10)\nwith open('f') as fh:\n"
        "    for line in fh:\n        last.append(line)\n",
        "def f(out):\n    with open('f') as fh:\n        for line in fh:\n            out.append(line)\n",
        "buf = []\nwith open('f') as fh:\n    for line in fh:\n        buf.append(line)\n"
        "        if len(buf) > 10:\n            buf = []\n",
    ],
    "MB202": [
        "xs = list(range(10))\n",
        "xs = list(range(5, 10_005))\n",
        "for i in range(n):\n    print(i)\n",
        "xs = [*range(100)]\n",
        "def range(n):\n    return [n]\nxs = list(range(n))\n",  # shadowed builtin
    ],
    "MB301": [
        "from functools import lru_cache\n@lru_cache\ndef f(x):\n    return x\n",
        "from functools import lru_cache\n@lru_cache(maxsize=256)\ndef f(x):\n    return x\n",
        "from django.core.cache import cache\n@cache\ndef f(x):\n    return x\n",
        "import functools\n@functools.lru_cache(128)\ndef f(x):\n    return x\n",
        "def cache(f):\n    return f\n@cache\ndef g():\n    pass\n",
    ],
    "MB302": [
        DJ + "class V:\n    def rows(self):\n        if self._rows is None:\n"
        "            self._rows = list(User.objects.all()[:20])\n        return self._rows\n",
        DJ + "class V:\n    def count(self):\n        if self._n is None:\n"
        "            self._n = User.objects.count()\n        return self._n\n",
        SA
        + "class R:\n    def rows(self, s):\n        self._rows = self._rows or s.query(User).limit(5).all()\n",
        DJ + "from django.utils.functional import cached_property\nclass V:\n    @cached_property\n"
        "    def user(self):\n        return User.objects.get(pk=1)\n",
        "class V:\n    def rows(self):\n        if self._r is None:\n            self._r = self.q.all()\n",
    ],
    "MB401": [
        "import httpx\nclient = httpx.Client()\ndef fetch(url):\n    return client.get(url)\n",
        "from flask import Flask\nfrom sqlalchemy import create_engine\napp = Flask(__name__)\n"
        "engine = create_engine('sqlite://')\n@app.route('/')\ndef index():\n    return 'x'\n",
        "import requests\nclass Api:\n    def __init__(self):\n        self.s = requests.Session()\n",
        "import boto3\ndef make_client():\n    return boto3.client('s3')\n",
        "def handler(event, context):\n    c = Client()\n",  # not a known resource
        "import httpx\nfor url in urls:\n    def later():\n        return httpx.Client()\n",
        # closed before the call ends: its pool and buffers are given back
        "import aiohttp\nfrom fastapi import FastAPI\napp = FastAPI()\n@app.get('/x')\n"
        "async def x():\n    async with aiohttp.ClientSession() as s:\n"
        "        return await s.get('u')\n",
        "import httpx\nfor url in urls:\n    c = httpx.Client()\n    c.get(url)\n    c.close()\n",
        "import contextlib, requests\nfor u in urls:\n"
        "    with contextlib.closing(requests.Session()) as s:\n        s.get(u)\n",
        "import httpx\nfrom flask import Flask\napp = Flask(__name__)\n@app.route('/')\n"
        "def index():\n    c = httpx.Client()\n    with c:\n        return c.get('u').text\n",
        "import contextlib, httpx\nfrom flask import Flask\napp = Flask(__name__)\n"
        "@app.route('/')\ndef index():\n    with contextlib.ExitStack() as stack:\n"
        "        c = stack.enter_context(httpx.Client())\n        return c.get('u').text\n",
    ],
    "MB402": [
        "import copy\nfor sub in subscribers:\n    sub.send(copy.deepcopy(sub.state))\n",
        "import copy\nsnapshot = copy.deepcopy(payload)\nfor sub in subscribers:\n    sub.send(snapshot)\n",
        "import copy\nfor i in range(3):\n    x = copy.deepcopy(items[i])\n",
        "import copy\nfor s in subs:\n    p = make()\n    q = copy.deepcopy(p)\n",
        "for s in subs:\n    x = deepcopy(payload)\n",  # deepcopy not from copy
        "import copy\nfor s in subs:\n    x = copy.copy(payload)\n",
    ],
    "MB501": [
        DJ + "emails = list(User.objects.values_list('email', flat=True))\n",
        DJ + "emails = [u.email for u in User.objects.all()[:10]]\n",
        SA + "def f(session):\n    return [r.id for r in session.query(User.id)]\n",
        DJ + "names = [(u.first, u.last) for u in User.objects.all()]\n",
        SA + "def f(session):\n    return [u.id for u in session.query(User).limit(10)]\n",
        "emails = [u.email for u in User.objects.all()]\n",  # no ORM import
        # the rows serve more than this column (read elsewhere in the scope)
        SA + "def f(session):\n    plugins = session.query(Plugin).all()\n"
        "    for p in plugins:\n        p.check()\n    return {p.name for p in plugins}\n",
    ],
}

# Near-misses found on real code (the benchmark tree), kept as regressions.
NEGATIVE["MB102"] += [
    DB + "def f(cur):\n    cur.execute('PRAGMA table_info(t)')\n    return cur.fetchall()\n",
    DB
    + "def f(cur):\n    cur.execute('''\n        SELECT c.relname FROM pg_catalog.pg_class c\n    ''')\n    return cur.fetchall()\n",
    DB
    + "def f(cur):\n    cur.execute('SELECT table_name FROM user_tables')\n    return cur.fetchall()\n",
    DB + "def f(cur, t):\n    cur.execute('SHOW INDEX FROM %s' % t)\n    return cur.fetchall()\n",
]
NEGATIVE["MB201"] += [
    "out = []\nfor x in (i * 2 for i in items):\n    out.append(x)\n",
]
NEGATIVE["MB301"] += [
    "import functools\n@functools.cache\ndef settings():\n    return load()\n",
    "import functools\nclass A:\n    @classmethod\n    @functools.cache\n    def lookups(cls):\n        return {}\n",
]
POSITIVE["MB102"] += [
    DB
    + "def f(cur):\n    cur.execute('SELECT * FROM user_events')\n    return cur.fetchall()  # HIT\n",
]
POSITIVE["MB301"] += [
    "import functools\nclass A:\n    @functools.cache  # HIT\n    def f(self):\n        return 1\n",
]
NEGATIVE["MB102"] += [
    DB
    + "def f(cur, new):\n    if new:\n        q = 'SELECT a FROM information_schema.columns'\n    else:\n        q = 'SHOW COLUMNS FROM t'\n    cur.execute(q)\n    return cur.fetchall()\n",
    DB
    + "def f(cur):\n    res = cur.execute('SELECT name FROM sqlite_master')\n    return [r[0] for r in res.fetchall()]\n",
]
POSITIVE["MB102"] += [
    DB
    + "def f(cur, new):\n    if new:\n        q = 'SELECT a FROM information_schema.columns'\n    else:\n        q = 'SELECT * FROM events'\n    cur.execute(q)\n    return cur.fetchall()  # HIT\n",
]
NEGATIVE["MB102"] += [
    SA
    + "def f(conn):\n    return conn.exec_driver_sql('SELECT name FROM sys.fulltext_catalogs').fetchall()\n",
]
NEGATIVE["MB102"] += [
    DB + "class Cursor:\n    def fetchall(self):\n        return self.cursor.fetchall()\n",
]
NEGATIVE["MB201"] += [
    "def walk(items):\n    for i in items:\n        yield i\nout = []\nfor x in walk([1, 2]):\n    out.append(x)\n",
    DB
    + "def f(conn):\n    cur = conn.cursor()\n    cur.execute('SELECT oid FROM pg_type')\n    oids = []\n    for row in cur:\n        oids.append(row[0])\n",
]
POSITIVE["MB201"] += [
    "def rows(cur):\n    while batch := cur.fetchmany(100):\n        yield from batch\nkeep = []\nfor r in rows(c):\n    keep.append(r)  # HIT\n",
]
NEGATIVE["MB103"] += [
    "with open('/proc/self/statm') as f:\n    rss = int(f.read().split()[1])\n",
]
POSITIVE["MB103"] += [
    "with open('big.txt') as f:\n    for line in f.read().split('\\n'):  # HIT\n        print(line)\n",
]
# Primary key in a list already in memory: at most len(list) rows.
NEGATIVE["MB102"] += [
    SA + "def f(session, ids):\n    return session.query(Slice).filter(Slice.id.in_(ids)).all()\n",
    SA
    + "def f(session, ids):\n    stmt = select(User).where(User.id.in_(ids))\n    return session.execute(stmt).scalars().all()\n",
]
NEGATIVE["MB101"] += [
    DJ + "def f(ids):\n    return list(User.objects.filter(pk__in=ids))\n",
]
# The rows of a list of owners in hand: a preview variant (test_adoption.py).
NEGATIVE["MB102"] += [
    SA
    + "def f(session, uids):\n    return session.query(Key).filter(Key.owner_uid.in_(uids)).all()\n",
]
POSITIVE["MB102"] += [
    SA
    + "def f(session):\n    sub = select(Team.id)\n    return session.query(User).filter(User.id.in_(sub)).all()  # HIT\n",
]
POSITIVE["MB101"] += [
    DJ
    + "def f(page):\n    return list(Locale.objects.filter(pk__in=page.values_list('locale_id')))  # HIT\n",
]

# Bounds the rules see (issue 14): literal LIMIT however the SQL is built, aggregates, the rows of
# one owner, lazy querysets behind caches.
NEGATIVE["MB102"] += [
    DB
    + "def f(cur, n):\n    cur.execute('SELECT * FROM t LIMIT {}'.format(n))\n    return cur.fetchall()\n",
    DB
    + "def f(cur, n):\n    cur.execute(f'SELECT * FROM t ORDER BY id LIMIT {n}')\n    return cur.fetchall()\n",
    DB
    + "def f(cur, n):\n    sql = 'SELECT * FROM t'\n    sql += ' LIMIT %d' % n\n    cur.execute(sql)\n    return cur.fetchall()\n",
    DB + "def f(cur):\n    cur.execute('SELECT TOP 10 * FROM t')\n    return cur.fetchall()\n",
    DB
    + "def f(cur):\n    cur.execute('SELECT * FROM t FETCH FIRST 5 ROWS ONLY')\n    return cur.fetchall()\n",
    # Oracle 23ai's vector search: an approximate top k
    DB + "def f(cur):\n    cur.execute('SELECT * FROM t ORDER BY VECTOR_DISTANCE(v, :q) "
    "FETCH APPROX FIRST :k ROWS ONLY')\n    return cur.fetchall()\n",
    DB + "def f(cur):\n    cur.execute('SELECT * FROM t ORDER BY VECTOR_DISTANCE(v, :q) "
    "FETCH EXACT FIRST :k ROWS ONLY')\n    return cur.fetchall()\n",
    DB
    + "def f(cur):\n    cur.execute('SELECT state, COUNT(*) FROM jobs GROUP BY state')\n    return cur.fetchall()\n",
    SA
    + "from sqlalchemy import func\ndef f(s):\n    return s.query(Job.state, func.count(Job.id)).group_by(Job.state).all()\n",
    SA + "def f(s, build_id):\n    return s.query(Step).filter(Step.build_id == build_id).all()\n",
    SA + "def f(s, user):\n    return s.query(Key).filter_by(owner=user).all()\n",
    # raw SQL scoped by a key or an owner given as a parameter
    DB
    + "def f(cur, event_id):\n    cur.execute('SELECT * FROM talk WHERE event_id = %s', (event_id,))\n"
    "    return cur.fetchall()\n",
    DB + "def f(cur, uid):\n    sql = 'SELECT * FROM token t WHERE t.user_id = ? AND revoked = 0'\n"
    "    cur.execute(sql, (uid,))\n    return cur.fetchall()\n",
]
# The key's condition joined by AND at the statement's top: an OR inside a group picks among
# that owner's rows (FitTrackee's comments of one workout), and a subquery's own WHERE is its own.
NEGATIVE["MB102"] += [
    DB + "def f(cur, wid, uid):\n    cur.execute('''SELECT c.* FROM comments c\n"
    "        WHERE c.workout_id = :wid AND c.user_id NOT IN (SELECT b.user_id FROM blocked b\n"
    "          WHERE b.by_user_id = :uid) AND (c.user_id = :uid OR c.visibility = 'PUBLIC')\n"
    "        ORDER BY c.created_at''', {'wid': wid, 'uid': uid})\n"
    "    return cur.fetchall()\n",
]
POSITIVE["MB102"] += [
    # the key given only inside a subquery: every comment not by a blocked user
    DB + "def f(cur, uid):\n    cur.execute('''SELECT c.* FROM comments c WHERE c.user_id NOT IN\n"
    "        (SELECT b.user_id FROM blocked b WHERE b.by_user_id = :uid)''', {'uid': uid})\n"
    "    return cur.fetchall()  # HIT\n",
    # an OR at the top widens the owner's rows to every public one
    DB + "def f(cur, wid):\n    cur.execute('''SELECT * FROM comments WHERE workout_id = :wid\n"
    "        AND deleted = 0 OR visibility = 'PUBLIC' ''', {'wid': wid})\n"
    "    return cur.fetchall()  # HIT\n",
]
# SQL text a statement is built from (``from_statement(text(sql))``), one text per branch.
NEGATIVE["MB102"] += [
    SA + "def f(s, wid, user):\n    if user:\n"
    "        sql = 'SELECT c.* FROM comments c WHERE c.workout_id = :wid AND c.hidden = 0'\n"
    "    else:\n        sql = 'SELECT c.* FROM comments c WHERE c.workout_id = :wid'\n"
    "    return s.scalars(select(Comment).from_statement(text(sql)).params(wid=wid)).all()\n",
]
POSITIVE["MB102"] += [
    SA + "def f(s, wid, user):\n    if user:\n"
    "        sql = 'SELECT c.* FROM comments c WHERE c.workout_id = :wid'\n"
    "    else:\n        sql = 'SELECT c.* FROM comments c WHERE c.public = 1'\n"
    "    return s.scalars(select(Comment).from_statement(text(sql))).all()  # HIT\n",
]
# An equality only some rows meet bounds nothing: a branch of a conditional, a part of an OR.
POSITIVE["MB102"] += [
    SA + "def f(s, book_id):\n"
    "    return s.query(Book).filter((Book.id == book_id) if book_id != -1 else True).all()  # HIT\n",
    SA + "from sqlalchemy import or_\ndef f(s, book_id):\n"
    "    return s.query(Book).filter(or_(Book.id == book_id, Book.public == 1)).all()  # HIT\n",
]
NEGATIVE["MB102"] += [
    SA + "from sqlalchemy import and_\ndef f(s, author_id):\n"
    "    return s.query(Book).filter(and_(Book.author_id == author_id, Book.public == 1)).all()\n",
]
# One owner's rows by a bound parameter, each execution its own value.
NEGATIVE["MB102"] += [
    SA + "from sqlalchemy import bindparam\n"
    "def f(conn, dag):\n"
    "    q = select(Alert.ref).where(Alert.serialized_dag_id == bindparam('serialized_dag_id'))\n"
    "    return conn.execute(q, {'serialized_dag_id': dag}).fetchall()\n",
]
POSITIVE["MB102"] += [
    SA + "import sqlalchemy as sa\n"
    "def f(conn, state):\n"
    "    q = select(Job.id).where(Job.state == sa.bindparam('state'))\n"
    "    return conn.execute(q, {'state': state}).fetchall()  # HIT\n",
]
# A parameter on a shared attribute, or an OR that widens the key's rows, is no bound.
POSITIVE["MB102"] += [
    DB + "def f(cur, state):\n    cur.execute('SELECT * FROM job WHERE state = %s', (state,))\n"
    "    return cur.fetchall()  # HIT\n",
    DB
    + "def f(cur, eid):\n    cur.execute('SELECT * FROM t WHERE event_id = %s OR public', (eid,))\n"
    "    return cur.fetchall()  # HIT\n",
]
NEGATIVE["MB101"] += [
    DJ + "def f(event):\n    return list(Submission.objects.filter(event=event))\n",
    DJ
    + "def f(request):\n    for t in Token.objects.filter(user=request.user):\n        print(t)\n",
    DJ
    + "def f(self):\n    return [a for a in Answer.objects.filter(review__submission=self.submission)]\n",
    DJ + "def f(author):\n    return [b for b in author.book_set.all() if b.ok]\n",
    # a name read before it is rebound to a queryset: the queryset does not reach the read
    DJ + "def f(items):\n    total = len(items)\n"
    "    items = Item.objects.all()\n    return total, items\n",
    # the owner's keywords passed as ``**filters``: a literal, or assembled key by key
    DJ + "def f(self):\n    filters = {'event': self.event}\n"
    "    return list(Submission.objects.filter(**filters))\n",
    DJ + "def f(event, done):\n    filters = {}\n    filters['event'] = event\n"
    "    return list(Submission.objects.filter(**filters))\n",
    DJ
    + "from django.db.models import Count\nrows = list(Order.objects.values('state').annotate(n=Count('id')))\n",
]
NEGATIVE["MB302"] += [
    DJ + "from django.utils.functional import cached_property\nclass V:\n    @cached_property\n"
    "    def users(self):\n        return User.objects.filter(ok=True).all()\n",
]
# A filter on a value that does not name an owner, or on a literal, is no bound.
POSITIVE["MB101"] += [
    DJ + "def f(state):\n    return list(Order.objects.filter(state=state))  # HIT\n",
    DJ + "def f(ct):\n    return list(Log.objects.filter(created__gte=ct))  # HIT\n",
    DJ + "for u in User.objects.filter(is_active=True):  # HIT\n    print(u)\n",
    DJ + "def f(state):\n    filters = {'state': state}\n"
    "    return list(Order.objects.filter(**filters))  # HIT\n",
    # assigned later in the loop that reads it: the second turn reads the queryset
    DJ + "def f(pages):\n    for page in pages:\n        if page > 1:\n"
    "            print(len(rows))  # HIT\n"
    "        rows = Item.objects.filter(page__gte=page)\n",
]
POSITIVE["MB102"] += [
    DB
    + "def f(cur):\n    cur.execute('SELECT * FROM t WHERE id IN (SELECT id FROM u)')\n    return cur.fetchall()  # HIT\n",
    SA + "def f(s):\n    return s.query(Step).filter(Step.state == 'done').all()  # HIT\n",
]
# A list the code changes in place is the structure it needs; a range over data in hand at most
# doubles what is held (a preview variant).
NEGATIVE["MB202"] += [
    "import random\ndef f(n):\n    order = list(range(n))\n    random.shuffle(order)\n    return order\n",
    "def find(n, pairs):\n    parent = list(range(n))\n    for a, b in pairs:\n        parent[a] = b\n    return parent\n",
    "def f(items):\n    return list(range(len(items)))\n",
]
POSITIVE["MB202"] += [
    "def f(n):\n    ids = list(range(n))  # HIT\n    return sum(ids)\n",
]
# A copy the loop changes is needed on every turn: not reported (the "copy once" fix would be a
# bug there).
NEGATIVE["MB402"] += [
    "import copy\ndef f(items, tpl):\n    for it in items:\n        c = copy.deepcopy(tpl)\n        c['id'] = it\n        send(c)\n",
    "import copy\ndef f(items, tpl):\n    for it in items:\n        c = copy.deepcopy(tpl)\n        c.setdefault('x', []).append(it)\n",
    "import copy\ndef f(items, tpl):\n    for it in items:\n        c = copy.deepcopy(tpl)\n        setattr(c, 'owner', it)\n",
]

# A queryset's truth test fetches every row (issue 38): ``if rows:`` then ``writerows(rows)``.
# A lookup then its first row (``if qs: qs[0]``) and a test before the loop that is the load
# (reported once, at the loop) are left out.
POSITIVE["MB101"] += [
    DJ
    + "def f(w, since):\n    rows = User.objects.filter(last_login__lt=since).values_list('id')\n"
    "    if rows:  # HIT\n        w.writerows(rows)\n",
    DJ + "def f(since):\n    old = Order.objects.filter(day__lt=since)\n"
    "    if not old:  # HIT\n        return None\n    return old.delete()\n",
    DJ + "def f():\n    regs = Order.objects.filter(total__gt=0)\n"
    "    if regs:\n        for i, r in enumerate(regs):  # HIT (once: the loop is the load)\n"
    "            print(i, r)\n",
]
NEGATIVE["MB101"] += [
    DJ + "def f(email):\n    found = User.objects.filter(email=email)\n"
    "    if found:\n        return found[0]\n",
]

# A key column equal to one value in hand is the rows that reference one row, whatever the
# value is called (issue 38); a key of a shared attribute (``status_id``) still picks a share.
NEGATIVE["MB101"] += [
    DJ + "def f(value):\n    return list(History.objects.filter(element_id=value))\n",
]
POSITIVE["MB101"] += [
    DJ + "def f(value):\n    return list(Order.objects.filter(status_id=value))  # HIT\n",
]

# A key in hand named for the model it keys (``child=ci_id``), and a device's identifying
# values (an IP or MAC address, a serial number), are one owner's rows (after round 10).
NEGATIVE["MB101"] += [
    DJ
    + "def f(ci_id):\n    return [(r, r.parent) for r in Relation.objects.filter(child=ci_id)]\n",
    DJ + "def f(old):\n    for e in Entry.objects.filter(ip=old.address):\n        e.delete()\n",
]
POSITIVE["MB101"] += [
    DJ + "def f(status_id):\n    return list(Order.objects.filter(status=status_id))  # HIT\n",
]

# ``self`` as a filter's value is the object in hand, whatever the field is called
# (``bookings__source=self``: the transactions of one uploaded statement).
NEGATIVE["MB101"] += [
    DJ + "class Source:\n    def process(self):\n"
    "        for t in Order.objects.filter(bookings__source=self):\n            t.save()\n",
]

# After review: a slice after the truth test is no lookup (``if posts: return posts[:10]``
# fetched every row first); a relation to ``self`` through a shared attribute picks a share.
POSITIVE["MB101"] += [
    DJ
    + "def f():\n    posts = Order.objects.all()\n    if posts:  # HIT\n        return posts[:10]\n",
    DJ + "class Language:\n    def export(self):\n"
    "        for p in Order.objects.filter(language=self):  # HIT\n            print(p)\n",
]

# A filter in a branch bounds only that branch (after round 10): ``if uid: qs = qs.filter(
# owner=uid)`` still loads every row when ``uid`` is not given. A filter on both branches of
# an ``if``/``else``, a step in a ``with`` body, a page whose size the caller may leave out
# (``if limit: qs = qs[:limit]``), and a ``Q`` narrowed in a branch (``cond = cond & ~Q(…)``)
# keep what they bound.
POSITIVE["MB101"] += [
    DJ + "def f(uid=None):\n    qs = Order.objects.all()\n    if uid:\n"
    "        qs = qs.filter(user_id=uid)\n    for o in qs:  # HIT\n        yield o\n",
    DJ + "def f(uids):\n    qs = Order.objects.filter(total__gt=0)\n    for uid in uids:\n"
    "        qs = qs.filter(user_id=uid)\n    return list(qs)  # HIT\n",
    DJ
    + "def f(uid):\n    qs = Order.objects.all()\n    try:\n        pass\n    except ValueError:\n"
    "        qs = qs.filter(user_id=uid)\n    return list(qs)  # HIT\n",
]
NEGATIVE["MB101"] += [
    DJ + "def f(uid, gid):\n    qs = Order.objects.all()\n    if uid:\n"
    "        qs = qs.filter(user_id=uid)\n    else:\n        qs = qs.filter(group_id=gid)\n"
    "    return list(qs)\n",
    DJ + "def f(uid, gid, sid):\n    qs = Order.objects.all()\n    if uid:\n"
    "        qs = qs.filter(user_id=uid)\n    elif gid:\n        qs = qs.filter(group_id=gid)\n"
    "    else:\n        if sid:\n            qs = qs.filter(shop_id=sid)\n        else:\n"
    "            qs = qs.filter(shop_id=0)\n    return list(qs)\n",
    DJ + "def f(uid, lock):\n    qs = Order.objects.all()\n    with lock:\n"
    "        qs = qs.filter(user_id=uid)\n    return list(qs)\n",
    DJ + "def f(limit):\n    qs = Order.objects.all()\n    if limit:\n"
    "        qs = qs[:limit]\n    return list(qs)\n",
    DJ + "def f(limit=50):\n    qs = Order.objects.all()\n    if limit is not None:\n"
    "        qs = qs[:limit]\n    return list(qs)\n",
    DJ + "from django.db.models import Q\n"
    "def f(order, user=None):\n    cond = Q(order=order) & Q(kind='x')\n    if user:\n"
    "        cond = cond & ~Q(user_id=user.id)\n    return list(Line.objects.filter(cond))\n",
]

# One object's own span (after round 10): a column bounded below and above by two attributes
# of the same object in hand (one network's addresses) is that object's rows; two values of
# the command's options, or of two objects, can span the table.
NEGATIVE["MB101"] += [
    DJ + "class Network:\n    def addresses(self):\n"
    "        return list(Order.objects.filter(number__gte=self.min_ip, number__lte=self.max_ip))\n",
    DJ + "def f(net):\n    return list(Order.objects.filter(number__range=(net.low, net.high)))\n",
]
POSITIVE["MB101"] += [
    DJ + "def f(options):\n"
    "    return list(Order.objects.filter(number__gte=options.low, number__lte=options.high))  # HIT\n",
    DJ + "def f(a, b):\n"
    "    return list(Order.objects.filter(number__gte=a.low, number__lte=b.high))  # HIT\n",
]

# More calls that load a whole queryset (after round 10): ``dict()``, ``sorted()``, ``max()``,
# ``min()`` and ``frozenset()`` of it, ``in_bulk()`` with no ids, and Django's
# ``serializers.serialize()``. ``for x in sorted(qs)`` is reported once (as the loop).
POSITIVE["MB101"] += [
    DJ + "names = dict(User.objects.values_list('id', 'username'))  # HIT\n",
    DJ + "last = max(Order.objects.all(), key=lambda o: o.total)  # HIT\n",
    DJ + "by_id = User.objects.in_bulk()  # HIT\n",
    DJ + "def f(qs):\n    everyone = Order.objects.filter(total__gt=0)\n"
    "    return everyone.in_bulk(id_list=None)  # HIT\n",
    DJ + "from django.core import serializers\n"
    "text = serializers.serialize('json', Order.objects.all())  # HIT\n",
    DJ + "for o in sorted(Order.objects.all(), key=str):  # HIT (once)\n    print(o)\n",
]
NEGATIVE["MB101"] += [
    DJ + "def f(ids):\n    return User.objects.in_bulk(ids)\n",
    DJ + "def f(a, b):\n    return max(a, b)\n",
]

# ``len(users)`` after ``for u in users:`` reads the result cache the loop filled: the loop is
# the load, reported once (after round 10). Reassigned in between, it is a new query.
POSITIVE["MB101"] += [
    DJ + "def f():\n    users = User.objects.all()\n    for u in users:  # HIT\n        u.save()\n"
    "    return len(users)\n",
    DJ + "def f():\n    users = User.objects.all()\n    for u in users:  # HIT\n        u.save()\n"
    "    users = User.objects.filter(active=True)\n    return len(users)  # HIT\n",
]

# A container whose size the loop checks and hands to a call then (``if len(pending) >=
# BATCH: flush(pending)``) is a batch written every N items (after round 11); a size check
# that hands it nowhere is not.
NEGATIVE["MB201"] += [
    DJ + "def f(flush):\n    pending = []\n    for u in User.objects.all().iterator():\n"
    "        pending.append(u)\n        if len(pending) >= 1000:\n            flush(User, pending)\n"
    "    flush(User, pending)\n",
]
POSITIVE["MB201"] += [
    DJ + "def f(log):\n    pending = []\n    for u in User.objects.all().iterator():\n"
    "        pending.append(u)  # HIT\n        if len(pending) >= 1000:\n            log('big')\n",
]

# Owners named in hand (after round 11): a value whose name ends in an owner
# (``other_user``, ``main_user``), a literal list of such owners (``responsibles__in=[user]``,
# ``{user, *cc_users}``), a list named for a kind the column holds (``represented_users__in=
# users``), and a ``Q`` built clause by clause (``q = Q(); q |= Q(product__parent_id=p.id)``).
# A generic object (``programs=other_instance``), a literal of shared values
# (``status__in=[a, b]``) or a list of objects of another kind still count as a load.
NEGATIVE["MB101"] += [
    DJ + "def merge(main_user, other_user):\n"
    "    for o in Order.objects.filter(responsibles__in=[other_user]):\n        o.save()\n"
    "    return list(Order.objects.filter(contributions__contributor=main_user))\n",
    DJ + "from django.db.models import Q\n"
    "def cc(user, additional_cc_users):\n    users = {user, *additional_cc_users}\n"
    "    return set(User.objects.filter(Q(represented_users__in=users) | Q(ccing_users__in=users)))\n",
    DJ + "from django.db.models import Q\n"
    "def bump(item):\n    q = Q()\n    q |= Q(product__variation_parent_id=item.product)\n"
    "    for child in Order.objects.filter(q):\n        child.save()\n",
]
POSITIVE["MB101"] += [
    DJ + "def merge(other_instance):\n"
    "    return list(Order.objects.filter(programs=other_instance))  # HIT\n",
    DJ + "def f(a, b):\n    return list(Order.objects.filter(status__in=[a, b]))  # HIT\n",
    DJ + "def f(program):\n    return list(Order.objects.filter(programs__in=[program]))  # HIT\n",
    DJ + "from django.db.models import Q\n"
    "def bump(item):\n    q = Q()\n    q |= Q(kind='x')\n"
    "    return list(Order.objects.filter(q))  # HIT\n",
]

# After round 12: ``.iterator()`` streams the rows, but a list, set or dict comprehension (or
# ``list()``) over it keeps one item per row; a generator, a loop or a slice keeps nothing.
# Staff accounts through ``Q(is_staff=True) | Q(is_superuser=True)`` are a handful, and one end
# of a relation keyed by a row in hand (``conceptto=conceptid``) is that row's relations.
POSITIVE["MB101"] += [
    DJ + "def f():\n    return [str(o) for o in Order.objects.all().iterator()]  # HIT\n",
    DJ
    + "def f():\n    return list(Order.objects.filter(total__gt=0).iterator(chunk_size=500))  # HIT\n",
]
NEGATIVE["MB101"] += [
    DJ + "def f():\n    return sum(o.total for o in Order.objects.all().iterator())\n",
    DJ + "def f():\n    for o in Order.objects.iterator():\n        print(o)\n",
    DJ + "def f():\n    return [o for o in Order.objects.all()[:10].iterator()]\n",
    DJ + "from django.db.models import Q\n"
    "def f():\n    for u in User.objects.filter(Q(is_staff=True) | Q(is_superuser=True)):\n"
    "        u.save()\n",
    DJ + "from django.db.models import Q\n"
    "def f(conceptid):\n    rels = Order.objects.filter(Q(conceptto=conceptid), ~Q(kind='x'))\n"
    "    return len(rels)\n",
]

# After round 12: a page cut only under a test of a parameter that has none by default
# (``def list_runs(limit=None)``, a CLI's ``--limit`` defaulting to None) leaves every row to the
# call that leaves it out.
POSITIVE["MB101"] += [
    DJ + "def f(limit=None):\n    qs = Order.objects.all()\n    if limit:\n"
    "        qs = qs[:limit]\n    return list(qs)  # HIT\n",
    DJ + "def f(*, status=None, limit=0):\n    qs = Order.objects.filter(total__gt=0)\n"
    "    if limit > 0:\n        qs = qs[:limit]\n    for o in qs:  # HIT\n        print(o)\n",
]

# From a review of the change after round 12: ``Model.objects.iterator()`` kept whole is a
# load too; a ``Q`` widened on every path and in a branch by owners keeps owners; a page the default
# path does cut (``if not everything:``), or a parameter given a value in the function
# (``limit = limit or 25``), still bounds.
# (The ``Q`` cases are in ``test_built_conditions.py``: positives here run the owner variant.)
POSITIVE["MB101"] += [
    DJ + "def f():\n    return list(Order.objects.iterator())  # HIT\n",
    DJ + "def f():\n    return [str(o) for o in User.objects.iterator()]  # HIT\n",
]
NEGATIVE["MB101"] += [
    DJ + "def c(everything=False):\n    qs = Order.objects.all()\n    if not everything:\n"
    "        qs = qs[:20]\n    return list(qs)\n",
    DJ + "def k(limit=None):\n    limit = limit or 25\n    qs = Order.objects.all()\n"
    "    if limit:\n        qs = qs[:limit]\n    return list(qs)\n",
    DJ + "from django.db.models import Q\n"
    "def a(user, other):\n    q = Q()\n    q |= Q(owner=user)\n    if other:\n"
    "        q |= Q(owner=other)\n    return list(Order.objects.filter(q))\n",
]
