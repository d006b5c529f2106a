"""Operator pages for segments: the catalogue, the builder's preview endpoint,
saving (with materialised members), static uploads, a segment's page, the 360
page's "why" and stage history, the transition matrix, the dashboard card and
the recompute button."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from incentives.models import Level
from segments import selectors, services
from segments.models import (
    Segment,
    SegmentMembership,
    SegmentMembershipChange,
    SegmentRun,
    SegmentSizeSnapshot,
    Stage,
    StageChange,
)
from tests.users.factories import CustomerFactory, OrderFactory
from users.models import CustomerTag

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def world(db):
    """Ten customers: six buyers with 1–6 recent paid orders of growing amounts, two
    who bought long ago, two who never bought; then one full recompute."""
    now = timezone.now()
    customers = []
    for i in range(10):
        customers.append(CustomerFactory(external_id=f"sv-{i:02d}", signup_at=now - timedelta(days=400)))
    for i, c in enumerate(customers[:6]):
        for k in range(i + 1):
            OrderFactory(customer=c, amount=Decimal(100 * (i + 1)), occurred_at=now - timedelta(days=3 + 10 * k))
    for c in customers[6:8]:
        OrderFactory(customer=c, amount=Decimal("50"), occurred_at=now - timedelta(days=300))
    CustomerTag.objects.create(customer=customers[0], tag="vip")
    CustomerTag.objects.create(customer=customers[5], tag="vip")
    run = services.recompute_sync()
    assert run.status == SegmentRun.Status.PUBLISHED
    return {"customers": customers, "run": run}


@pytest.fixture
def operator(client, make_user):
    client.force_login(make_user("operator"))
    return client


def _preview(client, definition):
    return client.post(
        reverse("segments:preview"), data=json.dumps({"definition": definition}), content_type="application/json"
    )


# --- list ------------------------------------------------------------------------------


def test_list_shows_builtin_segments_with_their_sizes(operator, world):
    html = operator.get(reverse("segments:list"), **EN).content.decode()
    sizes = dict(SegmentSizeSnapshot.objects.filter(run=world["run"]).values_list("key", "size"))
    stage = next(k for k, v in sizes.items() if k.startswith("stage:") and v > 0)
    slug = "stage-" + stage.split(":")[1]
    row = re.search(rf'<tr data-slug="{slug}">(.*?)</tr>', html, re.S)
    assert row, f"no row for {slug}"
    assert f'href="{reverse("segments:detail", args=[slug])}"' in row.group(1)
    assert re.search(r"data-size>(\d+)<", row.group(1)).group(1) == str(sizes[stage])
    assert "New segment" in html and "Upload static list" in html


def test_viewer_sees_the_list_without_create_buttons_and_cannot_create(client, make_user, world):
    client.force_login(make_user("viewer"))
    html = client.get(reverse("segments:list"), **EN).content.decode()
    assert "stage-" in html
    assert reverse("segments:create") not in html
    assert client.get(reverse("segments:create")).status_code == 403
    assert client.post(reverse("segments:create"), {"name": "x", "definition": "{}"}).status_code == 403
    assert client.get(reverse("segments:upload")).status_code == 403
    assert _preview(client, {"op": "and", "conditions": []}).status_code == 403
    assert not Segment.objects.exists()


def test_nav_shows_segments_with_permission_only(client, make_user, db):
    client.force_login(make_user(None))
    assert reverse("segments:list") not in client.get("/").content.decode()
    assert client.get(reverse("segments:list")).status_code == 403
    client.force_login(make_user("viewer"))
    assert reverse("segments:list") in client.get("/").content.decode()


# --- preview -----------------------------------------------------------------------------


def test_preview_returns_the_size_and_sample_of_a_simple_definition(operator, world):
    response = _preview(operator, {"op": "and", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]})
    assert response.status_code == 200
    body = response.json()
    assert body["size"] == 2
    assert body["sample"] == ["sv-00", "sv-05"]

    response = _preview(
        operator,
        {
            "op": "or",
            "conditions": [
                {"field": "orders", "op": "gte", "value": 3},
                {"field": "tag", "op": "has", "value": "vip"},
            ],
        },
    )
    assert response.json()["size"] == 5  # sv-02..sv-05 have 3+ orders, plus sv-00


def test_preview_accepts_a_bare_definition_too(operator, world):
    response = operator.post(
        reverse("segments:preview"),
        content_type="application/json",
        data=json.dumps({"op": "and", "conditions": [{"field": "orders", "op": "eq", "value": 0}]}),
    )
    assert response.status_code == 200
    assert response.json()["size"] == 2


def test_preview_of_an_unknown_field_is_a_400_naming_the_path(operator, world):
    response = _preview(
        operator,
        {
            "op": "and",
            "conditions": [
                {"field": "tag", "op": "has", "value": "vip"},
                {"field": "shoe_size", "op": "eq", "value": 42},
            ],
        },
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_definition"
    assert error["details"]["path"] == "definition.conditions[1].field"
    assert "shoe_size" in error["details"]["message"]
    assert set(error) == {"code", "message", "details"}


def test_preview_of_a_wrong_type_is_a_400_naming_the_path(operator, world):
    response = _preview(operator, {"op": "and", "conditions": [{"field": "r_score", "op": "gte", "value": "high"}]})
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert details["path"] == "definition.conditions[0].value"
    assert "应为数字" in details["message"]  # operators read it in their language (zh-hans by default)


def test_preview_of_a_body_that_is_not_json_is_a_400(operator, world):
    response = operator.post(reverse("segments:preview"), data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_preview_needs_post_and_the_csrf_token(make_user, world):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("operator"))
    assert strict.get(reverse("segments:preview")).status_code == 405
    body = json.dumps({"definition": {"op": "and", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}})
    assert strict.post(reverse("segments:preview"), data=body, content_type="application/json").status_code == 403
    page = strict.get(reverse("segments:create"))
    token = page.cookies["csrftoken"].value
    ok = strict.post(reverse("segments:preview"), data=body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 200 and ok.json()["size"] == 2


# --- builder: save --------------------------------------------------------------------------


def test_builder_page_carries_the_fields_and_the_local_script(operator, world):
    html = operator.get(reverse("segments:create"), **EN).content.decode()
    meta = json.loads(
        re.search(r'<script id="segment-builder-meta" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    names = {f["name"] for f in meta["fields"]}
    assert {"stage", "tier", "r_score", "tag", "event", "orders", "points_balance"} <= names
    event = next(f for f in meta["fields"] if f["name"] == "event")
    assert event["ops"] == ["eq", "gte", "lte"]
    assert re.search(r'<script src="/static/js/segment-builder\.js"', html)
    assert 'data-preview-url="/segments/preview"' in html
    assert "//" not in re.search(r'<script src="([^"]+)"', html).group(1)


def test_saving_a_segment_materialises_members_and_records_enter_changes(operator, world):
    definition = {"op": "and", "conditions": [{"field": "orders", "op": "gte", "value": 4}]}
    response = operator.post(
        reverse("segments:create"),
        {
            "name": "Frequent buyers",
            "slug": "",
            "description": "4+ orders",
            "definition": json.dumps(definition),
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert response["Location"] == reverse("segments:detail", args=[segment.slug])
    assert segment.slug == "frequent-buyers" and segment.definition == definition
    members = set(SegmentMembership.objects.filter(segment=segment).values_list("customer__external_id", flat=True))
    assert members == {"sv-03", "sv-04", "sv-05"}
    assert segment.size == 3
    entered = SegmentMembershipChange.objects.filter(segment=segment, change="enter")
    assert set(entered.values_list("customer__external_id", flat=True)) == members
    # Editing narrows it: one leaves, and that is recorded too.
    narrower = {"op": "and", "conditions": [{"field": "orders", "op": "gte", "value": 5}]}
    response = operator.post(
        reverse("segments:edit", args=[segment.slug]),
        {"name": "Frequent buyers", "description": "", "definition": json.dumps(narrower), "is_active": "on"},
    )
    assert response.status_code == 302
    assert SegmentMembershipChange.objects.filter(segment=segment, change="leave").get().customer.external_id == "sv-03"
    segment.refresh_from_db()
    assert segment.size == 2 and segment.slug == "frequent-buyers"


def test_an_operator_switches_a_segment_off_and_on_through_the_page(operator, world):
    from core.models import AuditEntry

    definition = {"op": "and", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}
    form = operator.get(reverse("segments:create"), **EN).content.decode()
    assert re.search(r'<input type="checkbox" name="is_active"[^>]*checked', form)  # on by default
    operator.post(reverse("segments:create"), {"name": "VIP", "definition": json.dumps(definition), "is_active": "on"})
    segment = Segment.objects.get(slug="vip")
    assert segment.is_active is True
    detail = operator.get(reverse("segments:detail", args=["vip"]), **EN).content.decode()
    assert re.search(r'data-role="segment-state" data-active="true">active<', detail)
    edit = operator.get(reverse("segments:edit", args=["vip"]), **EN).content.decode()
    assert re.search(r'<input type="checkbox" name="is_active"[^>]*checked', edit)

    # An unticked box is not posted: the segment is switched off.
    response = operator.post(
        reverse("segments:edit", args=["vip"]), {"name": "VIP", "description": "", "definition": json.dumps(definition)}
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.is_active is False and segment.definition == definition
    entry = AuditEntry.objects.get(action="segment.change", object_id=str(segment.pk))
    assert entry.changes == {"is_active": [True, False]}
    assert entry.actor_id is not None
    detail = operator.get(reverse("segments:detail", args=["vip"]), **EN).content.decode()
    assert re.search(r'data-role="segment-state" data-active="false">inactive<', detail)
    assert 'data-slug="vip"' not in operator.get(reverse("segments:list")).content.decode()
    edit = operator.get(reverse("segments:edit", args=["vip"]), **EN).content.decode()
    assert not re.search(r'<input type="checkbox" name="is_active"[^>]*checked', edit)
    zh = operator.get(reverse("segments:detail", args=["vip"]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "已停用" in zh

    operator.post(
        reverse("segments:edit", args=["vip"]),
        {"name": "VIP", "description": "", "definition": json.dumps(definition), "is_active": "on"},
    )
    assert Segment.objects.get(pk=segment.pk).is_active is True
    changes = AuditEntry.objects.filter(action="segment.change", object_id=str(segment.pk)).order_by("at", "pk")
    assert [e.changes for e in changes] == [{"is_active": [True, False]}, {"is_active": [False, True]}]


def test_a_bad_definition_writes_nothing_and_shows_the_path(operator, world):
    bad = {
        "op": "and",
        "conditions": [
            {"field": "orders", "op": "gte", "value": 1},
            {"field": "stage", "op": "eq", "value": "royalty"},
        ],
    }
    response = operator.post(reverse("segments:create"), {"name": "Bad", "definition": json.dumps(bad)}, **EN)
    # A form re-renders with 200 and its errors shown (as Django does); 4xx is for the JSON preview.
    assert response.status_code == 200
    html = response.content.decode()
    assert "definition.conditions[1].value" in html
    assert not Segment.objects.exists()
    assert not SegmentMembership.objects.exists() and not SegmentMembershipChange.objects.exists()


def test_invalid_json_and_duplicate_slug_are_form_errors(operator, world):
    response = operator.post(reverse("segments:create"), {"name": "J", "definition": "{not json"}, **EN)
    assert response.status_code == 200 and "not valid JSON" in response.content.decode()
    ok = {"op": "and", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}
    assert operator.post(reverse("segments:create"), {"name": "VIP", "definition": json.dumps(ok)}).status_code == 302
    # A slug the operator chose that is taken is a form error; one made from the name gets a suffix instead.
    again = operator.post(
        reverse("segments:create"), {"name": "VIP 2", "slug": "vip", "definition": json.dumps(ok)}, **EN
    )
    assert again.status_code == 200
    assert "exists already" in again.content.decode()
    assert Segment.objects.count() == 1


def test_slugs_are_pinyin_unique_and_may_be_chosen(operator, world):
    ok = json.dumps({"op": "and", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]})
    create = reverse("segments:create")
    assert operator.post(create, {"name": "高价值 VIP", "definition": ok})["Location"].endswith("/gao-jia-zhi-vip/")
    assert operator.post(create, {"name": "高价值 VIP", "definition": ok})["Location"].endswith("/gao-jia-zhi-vip-2/")
    assert operator.post(create, {"name": "女性用户", "definition": ok})["Location"].endswith("/nv-xing-yong-hu/")
    chosen = operator.post(create, {"name": "沉睡召回", "slug": "Winback-Q3", "definition": ok})
    assert chosen.status_code == 302 and chosen["Location"].endswith("/winback-q3/")
    bad = operator.post(create, {"name": "坏", "slug": "bad--slug-", "definition": ok}, **EN)
    assert bad.status_code == 200 and "lower-case letters" in bad.content.decode()
    # The service makes them, so every write path (API, admin, import, static upload) gets the same.
    assert services.segment_save(name="沉睡 用户!", definition=json.loads(ok)).slug == "chen-shui-yong-hu"
    upload = SimpleUploadedFile("ids.csv", b"sv-01\n", content_type="text/csv")
    assert operator.post(reverse("segments:upload"), {"name": "门店名单", "file": upload})["Location"].endswith(
        "/men-dian-ming-dan/"
    )
    Segment.objects.filter(slug__in=["chen-shui-yong-hu", "men-dian-ming-dan"]).delete()
    assert set(Segment.objects.values_list("slug", flat=True)) == {
        "gao-jia-zhi-vip",
        "gao-jia-zhi-vip-2",
        "nv-xing-yong-hu",
        "winback-q3",
    }


# --- static upload -------------------------------------------------------------------------------


def test_static_upload_saves_exactly_the_listed_customers(operator, world):
    upload = SimpleUploadedFile("ids.csv", b"external_id\nsv-01\nsv-07\nsv-01\n", content_type="text/csv")
    response = operator.post(reverse("segments:upload"), {"name": "Panel", "slug": "panel", "file": upload})
    assert response.status_code == 302
    segment = Segment.objects.get(slug="panel")
    assert segment.kind == Segment.Kind.STATIC and segment.size == 2
    assert set(segment.memberships.values_list("customer__external_id", flat=True)) == {"sv-01", "sv-07"}
    # "Edit" on a static segment leads to a new upload under the same slug, which replaces its members.
    edit = operator.get(reverse("segments:edit", args=["panel"]))
    assert edit.status_code == 302 and edit["Location"] == f"{reverse('segments:upload')}?slug=panel&name=Panel"
    again = SimpleUploadedFile("ids.csv", b"sv-02\n", content_type="text/csv")
    assert (
        operator.post(reverse("segments:upload"), {"name": "Panel", "slug": "panel", "file": again}).status_code == 302
    )
    assert list(segment.memberships.values_list("customer__external_id", flat=True)) == ["sv-02"]


def test_static_upload_with_an_unknown_id_writes_nothing_and_lists_it(operator, world):
    upload = SimpleUploadedFile("ids.csv", b"sv-01\nghost-1\nsv-02\nghost-2\n", content_type="text/csv")
    response = operator.post(reverse("segments:upload"), {"name": "Panel", "file": upload}, **EN)
    assert response.status_code == 200
    html = response.content.decode()
    unknown = re.search(r'data-role="unknown-ids">(.*?)</ul>', html, re.S).group(1)
    assert "ghost-1" in unknown and "ghost-2" in unknown and "sv-01" not in unknown
    assert not Segment.objects.exists() and not SegmentMembership.objects.exists()


# --- segment page ----------------------------------------------------------------------------------


def test_custom_segment_page_lists_members_definition_and_size_history(operator, world):
    definition = {"op": "and", "conditions": [{"field": "tag", "op": "has", "value": "vip"}]}
    operator.post(reverse("segments:create"), {"name": "VIP", "definition": json.dumps(definition), "is_active": "on"})
    services.recompute_sync()  # a second run snapshots the custom segment's size
    html = operator.get(reverse("segments:detail", args=["vip"]), **EN).content.decode()
    members = html.split('data-table="members"')[1].split("</table>")[0]
    assert re.findall(r'<a href="/customers/([^/]+)/">', members) == ["sv-00", "sv-05"]
    assert "&quot;has&quot;" in html.split('data-role="definition"')[1].split("</pre>")[0]
    svg = html.split('data-chart="size-history"')[1].split("</svg>")[0]
    assert svg.count("<circle") == SegmentSizeSnapshot.objects.filter(key="custom:vip").count() == 1


def test_builtin_segment_page_uses_the_builtin_history_key(operator, world):
    score = selectors.customer_score(customer=world["customers"][5])
    slug = f"stage-{score.stage}"
    html = operator.get(reverse("segments:detail", args=[slug]), **EN).content.decode()
    assert "sv-05" in html.split('data-table="members"')[1]
    history = html.split('data-table="size-history"')[1].split("</table>")[0]
    expected = SegmentSizeSnapshot.objects.get(key=f"stage:{score.stage}", run=world["run"]).size
    assert f'<td class="num">{expected}</td>' in history


def test_unknown_segment_is_404(operator, world):
    assert operator.get(reverse("segments:detail", args=["no-such-thing"])).status_code == 404
    assert operator.get(reverse("segments:edit", args=["no-such-thing"])).status_code == 404


# --- 360 page ---------------------------------------------------------------------------------------


def test_customer_page_shows_stage_why_and_stage_history(operator, world):
    customer = world["customers"][5]
    score = selectors.customer_score(customer=customer)
    html = operator.get(reverse("users:detail", args=[customer.external_id]), **EN).content.decode()
    panel = html.split('data-section="segments-why"')[1].split("</section>")[0]
    stage_label = str(Stage(score.stage).label)
    assert re.search(rf'data-field="stage">{re.escape(stage_label)}<', panel)
    assert f"rule set v{world['run'].rule_set.version}" in panel
    assert "paid orders in the 365-day window" in panel  # a reason with the threshold
    thresholds = panel.split('data-role="thresholds"')[1].split("</dl>")[0]
    assert "RFM window (days)" in thresholds and "<dd>365</dd>" in thresholds
    values = panel.split('data-role="values"')[1].split("</dl>")[0]
    assert "<dd>6</dd>" in values  # six paid orders
    history = panel.split('data-table="stage-history"')[1].split("</ol>")[0]
    assert StageChange.objects.filter(customer=customer).count() == 1
    assert f'data-stage="{score.stage}"' in history
    assert 'href="/segments/tier-' in panel or 'href="/segments/stage-' in panel


def test_customer_page_before_any_recompute_says_not_scored(operator, db):
    CustomerFactory(external_id="fresh-1")
    html = operator.get(reverse("users:detail", args=["fresh-1"]), **EN).content.decode()
    assert "Not scored yet" in html.split('data-section="segments-why"')[1]


# --- transitions -----------------------------------------------------------------------------------


def test_transitions_page_renders_the_matrix(operator, world):
    today = timezone.localdate()
    start, end = today - timedelta(days=7), today + timedelta(days=1)
    response = operator.get(reverse("segments:transitions"), {"start": start.isoformat(), "end": end.isoformat()}, **EN)
    assert response.status_code == 200
    table = response.content.decode().split('data-table="transitions"')[1].split("</table>")[0]
    expected = selectors.transition_matrix(
        start=world["run"].as_of - timedelta(days=8), end=world["run"].as_of + timedelta(days=1)
    )
    assert set(expected) == {"none"}  # everyone got their first stage in the one run
    row = re.search(r'<tr data-from="none">(.*?)</tr>', table, re.S).group(1)
    cells = [int(n) for n in re.findall(r'<td class="num[^"]*">(\d+)</td>', row)]
    assert cells[:-1] == [expected["none"].get(s, 0) for s in Stage.values]
    assert cells[-1] == 10


def test_transitions_page_rejects_a_bad_date(operator, world):
    response = operator.get(reverse("segments:transitions"), {"start": "2026-13-01", "end": "2026-01-01"}, **EN)
    assert response.status_code == 200
    assert 'data-role="form-errors"' in response.content.decode()
    assert 'data-table="transitions"' not in response.content.decode()
    backwards = operator.get(reverse("segments:transitions"), {"start": "2026-03-01", "end": "2026-01-01"}, **EN)
    assert backwards.status_code == 200
    assert "end date comes before the start date" in backwards.content.decode()


def test_transitions_export_as_csv(operator, world):
    today = timezone.localdate()
    response = operator.get(
        reverse("segments:transitions"),
        {
            "start": (today - timedelta(days=3)).isoformat(),
            "end": (today + timedelta(days=1)).isoformat(),
            "format": "csv",
        },
    )
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].split(",")[1:] == list(Stage.values)
    assert sum(int(n) for n in lines[1].split(",")[1:]) == 10


# --- dashboard and recompute ---------------------------------------------------------------------------


def test_dashboard_shows_recompute_progress_and_stage_sizes(operator, world):
    html = operator.get("/", **EN).content.decode()
    card = html.split('data-card="segments"')[1].split("</section>")[0]
    run = world["run"]
    assert f"#{run.pk}" in card and "published" in card
    assert f"{run.chunks_done} of {run.chunks_total} chunks done" in card
    phases = card.split('data-table="recompute-phases"')[1].split("</table>")[0]
    for name in ("aggregate", "model_fit", "score", "publish"):
        assert f'data-phase="{name}"' in phases
    assert "Aggregate orders" in phases and "Fit the churn model" in phases  # names, not codes
    sizes = card.split('data-table="stage-sizes"')[1].split("</table>")[0]
    assert sum(int(n) for n in re.findall(r'<td class="num">(\d+)</td>', sizes)) == 10
    assert 'aria-valuenow="100"' in card


def test_dashboard_shows_a_running_recompute_part_way(operator, world):
    SegmentRun.objects.create(
        as_of=timezone.now(), rule_set=world["run"].rule_set, chunks_total=4, chunks_done=1, phases={"aggregate": 1.5}
    )
    card = operator.get("/", **EN).content.decode().split('data-card="segments"')[1].split("</section>")[0]
    assert "running" in card and "1 of 4 chunks done" in card and 'aria-valuenow="25"' in card


def test_recompute_button_queues_the_task(operator, world, monkeypatch):
    calls = []
    monkeypatch.setattr("segments.tasks.segments_recompute_task.delay", lambda *a, **k: calls.append(a))
    response = operator.post(reverse("segments:recompute"), follow=True, **EN)
    assert calls == [()]
    assert response.redirect_chain[-1][0] == f"{reverse('dashboards:home')}?watch=recompute"  # the card follows it
    assert "recompute queued" in response.content.decode()


def test_recompute_while_one_runs_is_refused_with_a_message(operator, world, monkeypatch):
    calls = []
    monkeypatch.setattr("segments.tasks.segments_recompute_task.delay", lambda *a, **k: calls.append(a))
    SegmentRun.objects.create(as_of=timezone.now(), rule_set=world["run"].rule_set, chunks_total=2)
    response = operator.post(reverse("segments:recompute"), follow=True, **EN)
    assert calls == []
    assert "already running" in response.content.decode()


def test_viewer_cannot_start_a_recompute(client, make_user, world, monkeypatch):
    calls = []
    monkeypatch.setattr("segments.tasks.segments_recompute_task.delay", lambda *a, **k: calls.append(a))
    client.force_login(make_user("viewer"))
    assert client.post(reverse("segments:recompute")).status_code == 403
    assert calls == []
    assert client.get(reverse("segments:recompute")).status_code == 405


def test_segment_pages_are_translated(operator, world):
    html = operator.get(reverse("segments:list")).content.decode()
    assert "新建分群" in html and "上传静态名单" in html  # "New segment", "Upload static list"


# --- in a real browser ---------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
def test_operator_builds_and_previews_a_segment_in_the_browser(world, make_user, live_server, monkeypatch):
    make_user("operator", username="olga")  # before Playwright's loop starts (see tests/browser)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    elsewhere, posted = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_context(locale="en-US").new_page()
        page.set_default_timeout(15_000)
        page.on("request", lambda r: None if r.url.startswith(live_server.url) else elsewhere.append(r.url))
        page.on("request", lambda r: posted.append(r.post_data) if r.url.endswith("/segments/preview") else None)
        page.goto(f"{live_server.url}/login/?next=/segments/new")
        page.fill("#id_username", "olga")
        page.fill("#id_password", "correct-horse-battery")
        page.click("button[type=submit].btn-primary")
        page.wait_for_selector("[data-segment-builder]:not([hidden])")

        size = page.locator("[data-segment-preview] [data-role=size]")
        page.fill("#id_name", "Browser VIPs")
        page.click("[data-role=add]")
        row = page.locator("[data-role=row]").nth(0)
        row.locator("[data-role=field]").select_option("tag")
        row.locator("[data-role=value]").fill("vip")
        expect(size).to_have_text("2")  # (not wait_for_function: the CSP refuses its eval)
        assert page.locator("[data-role=sample] a").all_inner_texts() == ["sv-00", "sv-05"]

        # OR with "5+ orders" adds sv-04.
        page.select_option("[data-role=group-op]", "or")
        page.click("[data-role=add]")
        second = page.locator("[data-role=row]").nth(1)
        second.locator("[data-role=field]").select_option("orders")
        second.locator("[data-role=op]").select_option("gte")
        second.locator("[data-role=value]").fill("5")
        expect(size).to_have_text("3")

        # An event row with a window the server refuses (over 3650 days): its message names the path.
        page.click("[data-role=add]")
        third = page.locator("[data-role=row]").nth(2)
        third.locator("[data-role=field]").select_option("event")
        third.locator("[data-role=value]").fill("1")
        third.locator("[data-role=within_days]").fill("5000")
        expect(page.locator("[data-role=error]").first).to_contain_text("conditions[2].within_days")
        assert size.inner_text() == "—"
        third.locator("[data-role=remove]").click()
        expect(size).to_have_text("3")

        page.click("button[type=submit].btn-primary")
        page.wait_for_selector('table[data-table="members"]')
        members = page.locator('table[data-table="members"] tbody a').all_inner_texts()
        browser.close()

    assert members == ["sv-00", "sv-04", "sv-05"]
    assert elsewhere == []
    assert posted and all("csrf" not in (p or "") for p in posted)  # the token goes in a header
    segment = Segment.objects.get(slug="browser-vips")
    assert segment.definition == {
        "op": "or",
        "conditions": [{"field": "tag", "op": "has", "value": "vip"}, {"field": "orders", "op": "gte", "value": 5}],
    }
    assert segment.size == 3


def test_builder_offers_choices_with_internal_keys_and_the_operators_labels(operator, world):
    def meta(**headers):
        html = operator.get(reverse("segments:create"), **headers).content.decode()
        found = re.search(r'<script id="segment-builder-meta" type="application/json">(.*?)</script>', html, re.S)
        data = json.loads(found.group(1))
        return {f["name"]: dict(f["choices"]) for f in data["fields"]}, dict(data["event_types"]), data["text"]

    choices, events, text = meta()  # Chinese, the default
    rule_set = world["run"].rule_set
    assert list(choices["rfm_segment"]) == [g["code"] for g in rule_set.rfm_segments] + ["other"]
    assert list(choices["rfm_group"]) == [g["code"] for g in rule_set.rfm_groups] + ["general"]
    assert "金卡 Gold" in choices["level"] and choices["level"]["金卡 Gold"] == "金卡 Gold"
    assert choices["channel"]["douyin"] == "抖音" and choices["channel"]["xiaohongshu"] == "小红书"
    assert events["checkin"] == "签到" and events["add_to_cart"] == "加入购物车"
    assert choices["stage"]["mature"] != "mature" and choices["gender"]["female"] != "female"
    assert text["days"] == "天"
    choices, events, text = meta(**EN)
    assert choices["channel"]["app_store"] == "app store" and events["page_view"] == "page view"
    assert text["days"] == "days"
    # A level added by an admin is offered at once (read through incentives.selectors).
    Level.objects.create(name="黑钻 Black", threshold=1_234_567)
    assert list(meta()[0]["level"])[-1] == "黑钻 Black"
