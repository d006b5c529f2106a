"""Fuzz run over the whole OpenAPI document (issue 9, "Done when").

Every operation of the schema drf-spectacular serves at /api/schema/ is run with cases
schemathesis generates from it (valid and invalid ones), turned hostile by
``tests/fuzz/hostile.py`` (NUL, lone surrogates, edge instants, numbers past any column,
other JSON types, tampered cursors, %00 in paths and queries). A sweep then puts each
hostile value once in each place (each path and query parameter, each leaf of a valid
body, a hostile key in each object), and raw bodies no encoder writes (100,000 nested
arrays, ``1e999999``, invalid UTF-8, over the size limit) go to each POST.
The requests go in-process through Django's test client with a key holding every scope,
inside the test's database transaction (each in a savepoint); what a request queues on
commit runs as the worker would. Then every customer is read back through each
interface that shows one.

The rules checked (SPEC: "a clear error in the one error shape, nothing lost"):
  * no response ≥ 500, and no side-effect task raises on a row the API accepted;
  * every refusal from /api/ is JSON in the error shape {"error": {code, message, details}},
    an unknown path a 404 and a method an operation lacks a 405;
  * after the writes, no read of any customer (profile, points, list, 360 page, admin
    lists and change pages, search) answers ≥ 500.
Recorded but not failed on (REPORT_ONLY): schemathesis' conformance checks (status,
content type, body against the declared schema) and values of another JSON type the
API accepted by coercion.

Budget: ``FUZZ_EXAMPLES`` generated cases per operation (default 40) plus the sweep,
derandomized, so a run is the same run every time: 2.5 min wall (51 s CPU) for the module on
2 shared cores. Runs when ``OPS_FUZZ=1`` (bin/test sets it). ``OPS_FUZZ_REPORT=path``
appends every finding, report-only ones included, as a JSON line to that file.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections import defaultdict
from urllib.parse import quote

import pytest
import schemathesis
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET

from tests.fuzz import hostile
from tests.incentives.factories import RewardFactory
from tests.segments.factories import segment
from tests.users.factories import CustomerFactory, EventFactory, OrderFactory

ENABLED = os.environ.get("OPS_FUZZ") == "1"
pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.django_db,
    pytest.mark.skipif(not ENABLED, reason="the OpenAPI fuzz run: set OPS_FUZZ=1"),
]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
REPORT = os.environ.get("OPS_FUZZ_REPORT")
KNOWN_CUSTOMERS = ["fz-1", "fz-2", "fz-3"]
# Recorded in the report, not failed on: the schema's own accuracy (undocumented
# statuses, bodies that differ from the declared ones) and values of another JSON type
# the API took by coercion. Issue 9 asks to decide on both; see the findings.
REPORT_ONLY = {"conformance", "coerced"}


def _load_schema():
    """The document /api/schema/ serves, generated in-process (no request needed)."""
    document = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
    return schemathesis.openapi.from_dict(document)


SCHEMA = _load_schema() if ENABLED else None  # generated at collection only when the run is on
OPERATIONS = sorted(
    (op.ok().path, op.ok().method.upper()) for op in (SCHEMA.get_all_operations() if SCHEMA else []) if op.ok()
)


# ---- recording ----------------------------------------------------------------------


def _app_frame(exc_info) -> str:
    """The innermost frame in the project's own code: the root cause's place."""
    frames = traceback.extract_tb(exc_info[2])
    ours = [f for f in frames if "/site-packages/" not in f.filename and "/lib/python" not in f.filename]
    frame = (ours or frames)[-1]
    return f"{os.path.relpath(frame.filename)}:{frame.lineno} in {frame.name}"


def _short(data, limit=300) -> str:
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else str(data)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


class Findings:
    def __init__(self, label: str):
        self.label = label
        self.items: list[dict] = []

    def add(self, kind: str, request: str, status: int | None, error: str, where: str = "", body: str = ""):
        item = {
            "operation": self.label,
            "kind": kind,
            "request": _short(request, 400),
            "status": status,
            "error": _short(error, 400),
            "where": where,
            "body": _short(body, 200),
        }
        self.items.append(item)
        if REPORT:
            with open(REPORT, "a") as fh:
                fh.write(json.dumps(item, ensure_ascii=True) + "\n")

    def failures(self) -> list[dict]:
        return [i for i in self.items if i["kind"] not in REPORT_ONLY]

    def summary(self) -> str:
        by_cause: dict[tuple, list[dict]] = defaultdict(list)
        for item in self.failures():
            by_cause[(item["kind"], item["status"], item["where"] or item["error"][:80])].append(item)
        lines = [f"{len(self.failures())} finding(s), {len(by_cause)} distinct:"]
        for (kind, status, where), items in by_cause.items():
            first = items[0]
            lines.append(f"- [{kind}] {status} ×{len(items)} at {where}: {first['error']}\n    e.g. {first['request']}")
        return "\n".join(lines)


# ---- sending ------------------------------------------------------------------------


class Sender:
    """Sends one request in-process, in a savepoint of the test's transaction, and runs
    what it queued on commit as the worker would."""

    def __init__(self, client: Client, capture, findings: Findings):
        self.client = client
        self.capture = capture
        self.findings = findings
        self.sent = 0

    def send(self, method: str, url: str, body: bytes | None, *, describe: str, kind: str = "server error"):
        self.sent += 1
        sid = transaction.savepoint()
        with self.capture(execute=False) as callbacks:
            response = self.client.generic(method, url, data=body or b"", content_type="application/json")
        if response.status_code >= 500 or response.exc_info:
            transaction.savepoint_rollback(sid)
            exc_info = response.exc_info
            error = f"{type(exc_info[1]).__name__}: {exc_info[1]}" if exc_info else "(no exception)"
            where = _app_frame(exc_info) if exc_info else ""
            self.findings.add(kind, describe, response.status_code, error, where, response.content)
            return response
        transaction.savepoint_commit(sid)
        self._run_queued(callbacks, describe)
        return response

    def _run_queued(self, callbacks, describe: str):
        for cb in callbacks:
            task = getattr(getattr(cb, "func", None), "__self__", None)
            if not getattr(task, "name", None):
                continue
            sid = transaction.savepoint()
            try:
                task(*cb.args, **cb.keywords)
            except Exception as exc:
                transaction.savepoint_rollback(sid)
                self.findings.add(
                    "task raised",
                    f"{task.name} after {describe}",
                    None,
                    f"{type(exc).__name__}: {exc}",
                    _app_frame((type(exc), exc, exc.__traceback__)),
                )
            else:
                transaction.savepoint_commit(sid)


def _conformance(case, method: str, url: str, raw: bytes | None, response, findings: Findings, describe: str):
    """Whether the answer is one the schema declares, with the body it declares
    (schemathesis' own checks): recorded, not failed on (see the module docstring)."""
    import requests
    from schemathesis.core.failures import FailureGroup
    from schemathesis.core.transport import Response
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    try:
        request = requests.Request(method, f"http://testserver{url}", data=raw or None).prepare()
    except Exception:
        return
    headers = {k.lower(): [v] for k, v in response.headers.items()}
    wrapped = Response(response.status_code, headers, response.content, request=request, elapsed=0.0, verify=True)
    try:
        case.validate_response(
            wrapped, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
        )
    except FailureGroup as group:
        for failure in group.exceptions:
            findings.add("conformance", describe, response.status_code, f"{failure.title}: {failure.message}")
    except Exception as exc:  # a check that cannot read the answer is a finding too
        findings.add("conformance", describe, response.status_code, f"{type(exc).__name__}: {exc}")


def _json_type(value) -> str:
    if isinstance(value, hostile.Raw):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _took_it(response) -> bool:
    """A 2xx that wrote the row: no row error in a batch answer."""
    if response.status_code >= 300:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return True
    return not (isinstance(body, dict) and body.get("errors"))


def _error_shape_problem(response) -> str | None:
    if response.status_code < 400 or response.status_code >= 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"not JSON ({response.get('Content-Type')})"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not {"code", "message", "details"} <= set(error):
        return f"not the error shape: {_short(response.content, 120)}"
    return None


# ---- the seeded world ---------------------------------------------------------------


@pytest.fixture
def world(api, api_key):
    """Customers with known external ids (with orders and events), a reward, a
    redemption, a segment and a ticket, so generated path parameters reach real rows."""
    customers = [CustomerFactory(external_id=eid) for eid in KNOWN_CUSTOMERS]
    for c in customers:
        OrderFactory(customer=c)
        EventFactory(customer=c)
    reward = RewardFactory(points_price=10, stock=1000)
    r = api.post(
        "/api/v1/points/entries",
        {"customer": "fz-1", "kind": "earn", "amount": 1000, "reason": "fuzz seed", "idempotency_key": "fz-seed"},
        format="json",
    )
    assert r.status_code == 201, r.content
    r = api.post(f"/api/v1/rewards/{reward.pk}/redeem", {"customer": "fz-1", "idempotency_key": "fz-r"}, format="json")
    assert r.status_code == 201, r.content
    redemption_id = r.json()["redemption"]["id"]
    segment("fz-big", {"field": "monetary", "op": "gte", "value": 10})
    r = api.post(
        "/api/v1/tickets",
        {"customer": "fz-1", "category": "question", "subject": "fuzz", "body": "seed", "idempotency_key": "fz-t"},
        format="json",
    )
    assert r.status_code == 201, r.content
    ticket_id = r.json()["id"]
    from communities.models import CommunityGroup
    from communities.services.groups import group_save
    from communities.services.ingest import activity_upsert

    owner = get_user_model().objects.create_user("fz-owner", password="correct-horse-battery")
    group = group_save(group=CommunityGroup(code="fz-group", name="fuzz group", owner=owner), actor=None)
    activity_upsert(group=group, code="fz-act", title="fuzz", starts_at=timezone.now(), ends_at=None)
    from campaigns.services.campaigns import VariantSpec, campaign_create
    from communities.services import templates

    approver = get_user_model().objects.create_superuser("fz-approver", password="correct-horse-battery")
    template = templates.template_create(code="fz-promo", name="fuzz", kind="campaign", body="Hi {{ nickname }}")
    templates.version_approve(version=template.versions.get(), actor=approver)
    campaign = campaign_create(
        data={"name": "fuzz", "channel": "push", "segments": ["fz-big"]}, variants=[VariantSpec("A", 100, "fz-promo")]
    )
    return {
        "campaign_id": [str(campaign.pk)],
        "group_id": [str(group.pk)],
        "code": ["fz-act"],
        "external_id": KNOWN_CUSTOMERS,
        "customer": KNOWN_CUSTOMERS,
        "reward_id": [str(reward.pk)],
        "redemption_id": [str(redemption_id)],
        "slug": ["fz-big"],
        "segment": ["fz-big"],
        "ticket_id": [str(ticket_id)],
        "auth": f"Bearer {api_key.full}",
    }


@pytest.fixture(autouse=True)
def _quiet_request_log():
    """The findings carry each exception; the per-request traceback log is noise here."""
    logger = logging.getLogger("django.request")
    old = logger.disabled
    logger.disabled = True
    yield
    logger.disabled = old


@pytest.fixture
def admin_client(db):
    user = get_user_model().objects.create_superuser("fuzz-admin", "fuzz-admin@example.com", "pw-fuzz-admin")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _api_client(world) -> Client:
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=world["auth"])


def _known_path(operation, world) -> dict:
    return {p.name: world[p.name][0] for p in operation.path_parameters if p.name in world}


def _url(path_template: str, path_parameters: dict, query: dict) -> str:
    path = path_template
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", hostile.encode_path_parameter(value))
    qs = hostile.encode_query(query)
    return f"{path}?{qs}" if qs else path


# ---- the read-back ------------------------------------------------------------------


def read_back(api: Sender, operator: Sender):
    """Reads every customer back through every interface that shows one."""
    from users.models import Customer

    url = "/api/v1/customers/?page_size=100"
    for _ in range(200):
        r = api.send("GET", url, None, describe=f"GET {url}", kind="read-back")
        if r.status_code != 200:
            break
        nxt = r.json().get("next")
        if not nxt:
            break
        url = nxt.split("testserver", 1)[-1]
    ids = list(Customer.objects.order_by("pk").values_list("pk", "external_id"))
    for pk, eid in ids:
        e = hostile.encode_path_parameter(eid)
        for u in (f"/api/v1/customers/{e}", f"/api/v1/customers/{e}/points"):
            api.send("GET", u, None, describe=f"GET {u}", kind="read-back")
        for u in (f"/customers/{e}/", f"/admin/users/customer/{pk}/change/"):
            operator.send("GET", u, None, describe=f"GET {u} (operator)", kind="read-back")
    for q in ("", "fz", "1", "fz-1", "@"):
        u = f"/customers/?q={quote(q)}"
        operator.send("GET", u, None, describe=f"GET {u} (operator)", kind="read-back")
    for u in ("/", "/points/", "/segments/", "/segments/fz-big/"):
        operator.send("GET", u, None, describe=f"GET {u} (operator)", kind="read-back")
    for model in admin.site._registry:
        u = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        operator.send("GET", u, None, describe=f"GET {u} (admin)", kind="read-back")


# ---- the run ------------------------------------------------------------------------


def _strategy(operation):
    modes = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    modes.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return st.one_of(modes)


def _merged(dicts: list[dict]) -> dict:
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            out.setdefault(k, v)
    return out


def _sweep_base(accepted: list, world: dict):
    """One body with every field the accepted bodies used (a batch: one row with every
    field its accepted rows used), aimed at a known customer — the sweep swaps each of
    its leaves in turn."""
    if not accepted:
        return None
    base = _merged(accepted)
    rows = [r for b in accepted if isinstance(b.get("items"), list) for r in b["items"] if isinstance(r, dict)]
    if rows:
        base["items"] = [_merged(rows)]
    for container in [base, *base.get("items", [])]:
        if isinstance(container, dict) and "customer" in container:
            container["customer"] = world["customer"][0]
    return base


def _at(value, at):
    for step in at:
        value = value[step]
    return value


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_operation_survives_hostile_input(path, method, world, admin_client, django_capture_on_commit_callbacks):
    operation = SCHEMA[path][method]
    findings = Findings(f"{method} {path}")
    api = Sender(_api_client(world), django_capture_on_commit_callbacks, findings)
    operator = Sender(admin_client, django_capture_on_commit_callbacks, findings)

    accepted: list = []  # bodies the server took, bases for the sweep

    probe = "fz-2" if path == "/api/v1/customers/batch" else "fz-1"  # the customer the sweep writes to

    def send(params, query, body, has_body, case=None):
        url = _url(path, params, query)
        raw = hostile.dumps(body) if has_body else None
        describe = f"{method} {_short(url, 200)} body={_short(raw or b'', 300)}"
        outer = transaction.savepoint()
        response = api.send(method, url, raw, describe=describe)
        problem = _error_shape_problem(response)
        if problem:
            findings.add("error shape", describe, response.status_code, problem)
        if case is not None and response.status_code < 500:
            _conformance(case, method, url, raw, response, findings, describe)
        if method == "POST" and response.status_code < 300:
            # An accepted write must leave its customer readable. One that does not is
            # recorded here, with the write that did it, and undone so that it does not
            # stand in front of every later finding.
            read = api.send(
                "GET", f"/api/v1/customers/{probe}", None, describe=f"GET {probe} after {describe}", kind="read-back"
            )
            if read.status_code >= 500:
                transaction.savepoint_rollback(outer)
                return response
        transaction.savepoint_commit(outer)
        return response

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # nothing raises inside: findings are collected
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation), data=st.data())
    def run(case, data):
        params = data.draw(hostile.hostile_path_parameters(case.path_parameters, world))
        query = data.draw(hostile.hostile_query(case.query, world))
        has_body = case.body is not NOT_SET
        body = data.draw(hostile.hostile_body(case.body, world)) if has_body else None
        response = send(params, query, body, has_body, case)
        if has_body and response.status_code < 300 and isinstance(body, dict):
            accepted.append(body)

    known_path = _known_path(operation, world)
    if path in hostile.VALID_BODIES:  # before anything hostile reaches the seeded rows
        first = send(known_path, {}, hostile.VALID_BODIES[path], True)
        assert first.status_code < 300, f"the sweep's base body is refused: {first.content[:300]!r}"

    run()

    # The sweep: each hostile value once in each place, on top of what the run drew.
    base_body = hostile.VALID_BODIES.get(path) or (_sweep_base(accepted, world) if method == "POST" else None)
    print(f"{method} {path}: {api.sent} generated requests, {len(accepted)} bodies accepted, sweep base {base_body}")
    has_body = base_body is not None
    # the customer upsert keeps its row (fz-2: updates are swept too); elsewhere each
    # request gets its own keys and row ids, or it would be answered as a replay
    keys = {"idempotency_key"} if path == "/api/v1/customers/batch" else hostile.FRESH_KEYS
    n = iter(range(1, 10**6))
    for name in known_path:
        for value in hostile.PATH_SWEEP:
            send({**known_path, name: value}, {}, hostile.fresh(base_body, next(n), keys=keys), has_body)
    for parameter in operation.query:
        for value in hostile.QUERY_SWEEP:
            send(known_path, {parameter.name: value}, base_body, has_body)
    if has_body:
        for at in list(hostile.leaves(base_body)):
            leaf = _at(base_body, at)
            for value in hostile.sweep_values(leaf):
                body = hostile.fresh(hostile.replaced(base_body, at, value), next(n), at, keys=keys)
                response = send(known_path, {}, body, True)
                coercible = "properties" not in at  # event properties are free-form
                if coercible and _json_type(value) not in (_json_type(leaf), "null") and _took_it(response):
                    findings.add(
                        "coerced",
                        f"{method} {path} {'.'.join(map(str, at))}={_short(hostile.dumps(value), 60)}",
                        response.status_code,
                        f"a {_json_type(value)} where the schema's example has a {_json_type(leaf)} was accepted",
                    )
        for at in list(hostile.objects(base_body)):
            for key in hostile.HOSTILE_KEYS:
                body = hostile.fresh(hostile.with_key(base_body, at, key), next(n), keys=keys)
                send(known_path, {}, body, True)
    if method == "POST":
        for name, raw in hostile.raw_bodies().items():
            url = _url(path, known_path, {})
            describe = f"{method} {url} raw body: {name}"
            response = api.send(method, url, raw, describe=describe)
            problem = _error_shape_problem(response)
            if problem:
                findings.add("error shape", describe, response.status_code, problem)
    print(f"{api.sent} API requests in all")
    read_back(api, operator)
    print(f"{operator.sent} operator pages read back")
    if findings.failures():
        pytest.fail(findings.summary(), pytrace=False)


def test_unknown_paths_and_methods_answer_in_the_error_shape(world, django_capture_on_commit_callbacks):
    """An unknown /api/v1/ path is a JSON 404, a method an operation lacks a JSON 405."""
    findings = Findings("routing")
    api = Sender(_api_client(world), django_capture_on_commit_callbacks, findings)
    # A NUL in the path is refused before routing (400 malformed_request); the rest is routing's 404.
    expected = {"/api/v1/nope": 404, "/api/v1/customers/fz-1/nope": 404, "/api/v1/%00": 400}
    for url, method in [("/api/v1/nope", "GET"), ("/api/v1/customers/fz-1/nope", "POST"), ("/api/v1/%00", "GET")]:
        r = api.send(method, url, None, describe=f"{method} {url}")
        want = expected[url]
        problem = _error_shape_problem(r) or (None if r.status_code == want else f"status {r.status_code}, not {want}")
        if problem:
            findings.add("error shape", f"{method} {url}", r.status_code, problem)
    for path, method in OPERATIONS:
        other = "DELETE" if method != "DELETE" else "PUT"
        url = _url(path, _known_path(SCHEMA[path][method], world), {})
        r = api.send(other, url, None, describe=f"{other} {url}")
        problem = _error_shape_problem(r) or (None if r.status_code == 405 else f"status {r.status_code}, not 405")
        if problem:
            findings.add("error shape", f"{other} {url}", r.status_code, problem)
    if findings.failures():
        pytest.fail(findings.summary(), pytrace=False)


def test_operator_pages_refuse_hostile_queries(world, admin_client, django_capture_on_commit_callbacks):
    """Outside the OpenAPI document, the same profile on the pages an operator types into."""
    findings = Findings("operator pages")
    operator = Sender(admin_client, django_capture_on_commit_callbacks, findings)
    values = [v for v in hostile.QUERY_SWEEP if isinstance(v, hostile.Raw)] + ["\x00", "\udc00", "x" * 5000]
    for value in values:
        encoded = hostile.encode_query({"q": value})
        for url in (f"/customers/?{encoded}", f"/points/?{encoded}", f"/admin/users/customer/?{encoded}"):
            operator.send("GET", url, None, describe=f"GET {url}")
    for value in hostile.PATH_SWEEP:
        url = f"/customers/{hostile.encode_path_parameter(value)}/"
        operator.send("GET", url, None, describe=f"GET {url}")
    assert operator.sent >= 3 * len(values) + len(hostile.PATH_SWEEP)  # every page was asked
    if findings.failures():
        pytest.fail(findings.summary(), pytrace=False)
