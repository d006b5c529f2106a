"""SOP templates: what a body may say (checked at save, nothing written when refused),
the sandboxed rendering (HTML escaped, fields checked by type), the approval flow and
its history, the pages with their permissions per role (a second community manager
included), the preview and the admin."""

import re

import pytest
from django.test import Client
from django.utils import translation

from communities import templating
from communities.models import CommunityGroup, SopTemplate, SopTemplateVersion, TemplateKind, VersionStatus
from communities.selectors import templates as selectors
from communities.services import groups as group_services
from communities.services import templates as services
from core.errors import ApplicationError
from core.models import AuditEntry
from incentives.models import Level, PointsAccount
from tests.users.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ORDER_FIELD = {"name": "order_no", "label": "订单号", "type": "order_number", "required": True}
BODY = "亲爱的{{ nickname }}，您在{{ group }}的订单 {{ order_no }} 已处理。"


@pytest.fixture
def writer(make_user):
    return make_user("community_manager", "writer")


@pytest.fixture
def second_manager(make_user):
    return make_user("community_manager", "second")


@pytest.fixture
def approver(make_user):
    return make_user("admin", "approver")


@pytest.fixture
def template(writer):
    return services.template_create(
        code="order-done", name="订单已处理", kind=TemplateKind.FAQ, body=BODY, fields=[ORDER_FIELD], actor=writer
    )


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _refused(body, fields=None) -> ApplicationError:
    with pytest.raises(ApplicationError) as exc:
        services.version_check(body=body, fields=fields or [])
    return exc.value


# --- what a body may say ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ("{{ ''.__class__.__mro__ }}", "template_forbidden", "attribute access"),
        ("{{ nickname.__class__ }}", "template_forbidden", "attribute access"),
        ("{{ nickname['x'] }}", "template_forbidden", "item access"),
        ("{{ nickname|attr('__class__') }}", "template_forbidden", "“attr”"),
        ("{{ nickname|safe }}", "template_forbidden", "“safe”"),
        ("{{ range(10) }}", "template_forbidden", "a call"),
        ("{{ lipsum() }}", "template_forbidden", "a call"),
        ("{% for c in nickname %}{{ c }}{% endfor %}", "template_forbidden", "loop"),
        ("{% set x = 1 %}", "template_forbidden", "assignment"),
        ("{% include 'base.html' %}", "template_forbidden", "include"),
        ("{% extends 'base.html' %}", "template_forbidden", "extends"),
        ("{% autoescape false %}{{ nickname }}{% endautoescape %}", "template_forbidden", "autoescape"),
        ("{{ 'x' * 1000000000 }}", "template_forbidden", "arithmetic"),
        ("{{ nickname is defined }}", "template_forbidden", "test"),
        ("Hi {{ custmer }}", "template_unknown_variable", "custmer"),
        ("Hi {{ nickname }", "template_syntax", "Line 1"),
        ("{% if nickname %}hi", "template_syntax", "does not parse"),
        ("line one\n{{ nickname.x }}", "template_forbidden", "Line 2"),
        ("{{ " + "not " * 2000 + "nickname }}", "template_syntax", "nested too deeply"),
        ("   ", "template_empty", ""),
        ("x" * (templating.BODY_MAX + 1), "template_too_long", ""),
    ],
)
def test_a_body_is_refused_at_save_with_the_reason(body, code, needle):
    exc = _refused(body)
    assert exc.code == code and needle in exc.message


def test_allowed_constructs_pass_and_the_used_variables_are_recorded():
    fields, variables = services.version_check(
        body="{% if points > 100 %}{{ nickname|default('朋友', true)|upper }}{% else %}{{ level ~ '!' }}{% endif %}"
        " {{ order_no|truncate(20) }} {% raw %}{{ literally }}{% endraw %}",
        fields=[ORDER_FIELD],
    )
    assert variables == ["level", "nickname", "points"]
    assert fields == [ORDER_FIELD]


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ([{"name": "nickname", "label": "x"}], "name of a variable"),
        ([{"name": "Order", "label": "x"}], "is not a field name"),
        ([{"name": "loop", "label": "x"}], "is not a field name"),
        ([{"name": "a", "label": "x", "type": "colour"}], "unknown type"),
        ([{"name": "a", "label": "x"}, {"name": "a", "label": "y"}], "declared twice"),
        ([{"name": "a", "label": ""}], "needs a label"),
        ([{"name": "a", "label": "x", "required": "yes"}], "true or false"),
        ([{"name": "a", "label": "x", "colour": 1}], "unknown keys"),
        ({"name": "a"}, "must be a list"),
    ],
)
def test_bad_field_declarations_are_refused(fields, needle):
    exc = _refused("{{ a }}", fields)
    assert exc.code == "invalid_fields" and needle in exc.message


def test_a_declared_field_the_body_never_uses_is_refused():
    exc = _refused("Hi {{ nickname }}", [ORDER_FIELD])
    assert exc.code == "unused_field" and exc.details["unused"] == ["order_no"]


def test_a_refused_create_or_version_writes_nothing(writer, template):
    with pytest.raises(ApplicationError):
        services.template_create(code="bad", name="Bad", kind="faq", body="{{ x.y }}", actor=writer)
    with pytest.raises(ApplicationError) as exc:
        services.version_write(template=template, body="{{ nickname.__class__ }}", actor=writer)
    assert exc.value.code == "template_forbidden"
    assert not SopTemplate.objects.filter(code="bad").exists()
    assert template.versions.count() == 1
    assert AuditEntry.objects.filter(action__startswith="sop_template").count() == 2  # the create and v1


# --- rendering ----------------------------------------------------------------------


def test_rendering_escapes_html_and_fills_the_customer_and_the_fields(template, writer, approver):
    customer = CustomerFactory(nickname="<b>小美</b> & Co")
    level = Level.objects.create(name="金卡", threshold=987_654)
    PointsAccount.objects.create(customer=customer, balance=520, level=level)
    group = group_services.group_save(group=CommunityGroup(code="g1", name="跑团", owner=writer), actor=writer)
    services.version_approve(version=template.versions.get(), actor=approver)
    template.refresh_from_db()
    html = selectors.template_render(template, customer=customer, group=group, fields={"order_no": "SO-1"})
    assert html == "亲爱的&lt;b&gt;小美&lt;/b&gt; &amp; Co，您在跑团的订单 SO-1 已处理。"
    text = selectors.template_render(
        template, customer=customer, group=group, fields={"order_no": "SO-1"}, output=templating.TEXT
    )
    assert text == "亲爱的<b>小美</b> & Co，您在跑团的订单 SO-1 已处理。"
    version = services.version_write(template=template, body="{{ points }} / {{ level }}", actor=writer)
    services.version_approve(version=version, actor=approver)
    template.refresh_from_db()
    assert selectors.template_render(template, customer=customer) == "520 / 金卡"


def test_a_field_value_is_checked_by_its_type(writer, approver):
    fields = [
        {"name": "amount", "label": "金额", "type": "number", "required": True},
        {"name": "day", "label": "日期", "type": "date", "required": False},
        {"name": "order_no", "label": "订单号", "type": "order_number", "required": True},
    ]
    template = services.template_create(
        code="typed",
        name="typed",
        kind="faq",
        body="{{ amount }} {{ day }} {{ order_no }}",
        fields=fields,
        actor=writer,
    )
    services.version_approve(version=template.versions.get(), actor=approver)
    template.refresh_from_db()
    with pytest.raises(ApplicationError) as exc:
        selectors.template_render(template, fields={"amount": "lots", "day": "2026-13-01", "order_no": "x"})
    assert exc.value.code == "invalid_fields"
    assert set(exc.value.details) == {"amount", "day", "order_no"}
    assert "is not a number" in exc.value.details["amount"][0]
    assert "is not a date" in exc.value.details["day"][0]
    with pytest.raises(ApplicationError) as exc:
        selectors.template_render(template, fields={"amount": "1"})
    assert exc.value.details == {"order_no": ["订单号 is required."]}
    with pytest.raises(ApplicationError) as exc:
        selectors.template_render(template, fields={"amount": "1", "order_no": "SO-9", "coupon": "x"})
    assert "coupon" in exc.value.details
    assert selectors.template_render(template, fields={"amount": "12.50", "order_no": "SO-9"}) == "12.5  SO-9"


def test_only_the_approved_version_is_used(template, writer, approver):
    with pytest.raises(ApplicationError) as exc:
        selectors.template_render(template, fields={"order_no": "SO-1"})
    assert exc.value.code == "template_not_approved"
    pending = template.versions.get()
    with pytest.raises(ApplicationError):
        selectors.template_render(pending, fields={"order_no": "SO-1"})
    assert "SO-1" in selectors.template_preview(version=pending, fields={"order_no": "SO-1"})
    services.version_approve(version=pending, actor=approver)
    template.refresh_from_db()
    v2 = services.version_write(template=template, body="v2 {{ order_no }}", fields=[ORDER_FIELD], actor=writer)
    template.refresh_from_db()
    assert selectors.template_render(template, fields={"order_no": "SO-1"}).startswith("亲爱的")
    services.version_approve(version=v2, actor=approver)
    template.refresh_from_db()
    assert selectors.template_render(template, fields={"order_no": "SO-1"}) == "v2 SO-1"
    assert list(selectors.templates_usable(kind=TemplateKind.FAQ)) == [template]
    services.template_update(template=template, actor=approver, is_active=False)
    assert list(selectors.templates_usable(kind=TemplateKind.FAQ)) == []


def test_the_sample_customer_preview():
    fields = [ORDER_FIELD]
    text = selectors.template_render(
        SopTemplateVersion(template=SopTemplate(name="x"), body=BODY, fields=fields),
        fields=selectors.sample_field_values(fields),
        context=selectors.sample_context(),
        output=templating.TEXT,
        preview=True,
    )
    assert text == "亲爱的Xiao Ming，您在Morning runners的订单 SO20261203001 已处理。"


# --- approval flow and history -------------------------------------------------------


def test_approving_supersedes_the_version_in_use_and_the_history_says_who(template, writer, approver, make_user):
    v1 = template.versions.get()
    services.version_approve(version=v1, actor=approver, note="ok")
    v2 = services.version_write(template=template, body="new {{ order_no }}", fields=[ORDER_FIELD], actor=writer)
    other_admin = make_user("admin", "other-admin")
    services.version_approve(version=v2, actor=other_admin)
    v1.refresh_from_db()
    v2.refresh_from_db()
    template.refresh_from_db()
    assert v1.status == VersionStatus.SUPERSEDED and v1.reviewed_by == approver and v1.review_note == "ok"
    assert template.approved_version == v2 and v2.reviewed_by == other_admin
    actions = [(e.action, e.actor_label) for e in selectors.template_history(template=template)]
    assert actions == [
        ("sop_template.version_in_use", "other-admin"),
        ("sop_template_version.approve", "other-admin"),
        ("sop_template_version.supersede", "other-admin"),
        ("sop_template_version.write", "writer"),
        ("sop_template.version_in_use", "approver"),
        ("sop_template_version.approve", "approver"),
        ("sop_template_version.write", "writer"),
        ("sop_template.create", "writer"),
    ]


def test_rejecting_needs_a_reason_and_keeps_the_version_in_use(template, writer, approver):
    v1 = template.versions.get()
    services.version_approve(version=v1, actor=approver)
    v2 = services.version_write(template=template, body="bad idea {{ order_no }}", fields=[ORDER_FIELD], actor=writer)
    with pytest.raises(ApplicationError) as exc:
        services.version_reject(version=v2, actor=approver, note=" ")
    assert exc.value.details == {"note": ["required"]}
    services.version_reject(version=v2, actor=approver, note="tone")
    v2.refresh_from_db()
    template.refresh_from_db()
    assert v2.status == VersionStatus.REJECTED and v2.review_note == "tone"
    assert template.approved_version == v1
    with pytest.raises(ApplicationError) as exc:
        services.version_approve(version=v2, actor=approver)
    assert exc.value.code == "version_not_pending" and exc.value.status_code == 409


def test_who_may_approve(template, writer, approver, make_user):
    v1 = template.versions.get()
    for role in ("community_manager", "group_admin", "operator"):
        with pytest.raises(ApplicationError) as exc:
            services.version_approve(version=v1, actor=make_user(role, f"no-{role}"))
        assert exc.value.status_code == 403
    with pytest.raises(ApplicationError) as exc:
        services.version_approve(version=v1, actor=None)
    assert exc.value.status_code == 403
    own = services.version_write(template=template, body="mine {{ order_no }}", fields=[ORDER_FIELD], actor=approver)
    with pytest.raises(ApplicationError) as exc:
        services.version_approve(version=own, actor=approver)
    assert exc.value.code == "own_version" and exc.value.status_code == 403
    assert SopTemplateVersion.objects.filter(status=VersionStatus.APPROVED).count() == 0
    services.version_approve(version=own, actor=make_user("admin", "second-admin"))
    with pytest.raises(ApplicationError) as exc:
        services.version_approve(version=v1, actor=approver)
    assert exc.value.code == "stale_version"


def test_a_group_admin_writes_no_template(template, make_user):
    helper = make_user("group_admin", "helper")
    with pytest.raises(ApplicationError) as exc:
        services.version_write(template=template, body="{{ nickname }}", actor=helper)
    assert exc.value.status_code == 403
    with pytest.raises(ApplicationError):
        services.template_create(code="x", name="x", kind="faq", body="hi", actor=helper)
    assert template.versions.count() == 1


# --- pages ---------------------------------------------------------------------------


def test_the_list_and_detail_show_versions_and_history(template, writer, make_user):
    for user in (writer, make_user("group_admin", "helper"), make_user("viewer", "vic")):
        r = _client(user).get("/communities/templates/")
        assert r.status_code == 200 and "order-done" in r.content.decode()
    html = _client(writer).get(f"/communities/templates/{template.pk}/").content.decode()
    assert 'data-version="1" data-status="pending"' in html
    assert 'data-action="sop_template.create"' in html
    assert 'data-role="approve"' not in html  # a manager does not approve
    assert _client(writer).get("/communities/templates/999999/").status_code == 404


def test_writing_through_the_pages_and_bad_input_shown(writer, make_user):
    client = _client(writer)
    form = {
        "code": "welcome",
        "name": "入群欢迎",
        "kind": "welcome",
        "language": "zh-hans",
        "body": "欢迎 {{ nickname }} 加入 {{ group }}！{{ nickname.__class__ }}",
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "0",
        "form-0-name": "",
        "form-0-label": "",
        "form-0-type": "text",
    }
    r = client.post("/communities/templates/new", form)
    assert r.status_code == 400 and "attribute access" in r.content.decode()
    assert not SopTemplate.objects.filter(code="welcome").exists()
    form["body"] = "欢迎 {{ nickname }}，活动日期 {{ day }}"
    form.update({"form-0-name": "day", "form-0-label": "活动日期", "form-0-type": "date", "form-0-required": "on"})
    r = client.post("/communities/templates/new", form)
    assert r.status_code == 302
    created = SopTemplate.objects.get(code="welcome")
    assert created.versions.get().fields == [{"name": "day", "label": "活动日期", "type": "date", "required": True}]
    assert client.get("/communities/templates/new").status_code == 200
    html = client.get(f"/communities/templates/{created.pk}/write").content.decode()
    assert "活动日期 {{ day }}" in html and 'value="day"' in html  # the latest version to start from
    r = client.post(
        f"/communities/templates/{created.pk}/write",
        {"body": "{{ nobody }}", "form-TOTAL_FORMS": "0", "form-INITIAL_FORMS": "0"},
    )
    assert r.status_code == 400 and "nobody" in r.content.decode()
    assert created.versions.count() == 1
    helper = make_user("group_admin", "helper")
    assert _client(helper).get("/communities/templates/new").status_code == 403
    assert _client(helper).post(f"/communities/templates/{created.pk}/write", {"body": "x"}).status_code == 403


def test_approve_and_reject_pages_need_the_permission(template, writer, second_manager, approver, make_user):
    version = template.versions.get()
    for user in (writer, second_manager, make_user("group_admin", "helper")):
        r = _client(user).post(f"/communities/templates/versions/{version.pk}/approve")
        assert r.status_code == 403
        assert (
            _client(user).post(f"/communities/templates/versions/{version.pk}/reject", {"note": "x"}).status_code == 403
        )
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING
    html = _client(approver).get(f"/communities/templates/{template.pk}/").content.decode()
    assert 'data-role="approve"' in html
    r = _client(approver).post(f"/communities/templates/versions/{version.pk}/approve", {"note": "好"}, follow=True)
    assert "is approved and in use" in r.content.decode()
    version.refresh_from_db()
    assert version.status == VersionStatus.APPROVED and version.reviewed_by == approver


def test_an_approver_may_not_approve_their_own_version_on_the_page(template, approver):
    own = services.version_write(template=template, body="x {{ order_no }}", fields=[ORDER_FIELD], actor=approver)
    html = _client(approver).get(f"/communities/templates/{template.pk}/").content.decode()
    assert "You wrote this version" in html
    r = _client(approver).post(f"/communities/templates/versions/{own.pk}/approve", follow=True)
    assert "another approver must approve it" in r.content.decode()
    own.refresh_from_db()
    assert own.status == VersionStatus.PENDING


def _preview_text(html: str) -> str | None:
    found = re.search(r'<pre class="fb-text" data-role="preview-text">(.*?)</pre>', html, re.S)
    return found.group(1) if found else None


def test_the_preview_with_the_sample_or_a_real_customer_and_the_fields(template, writer):
    version = template.versions.get()
    client = _client(writer)
    url = f"/communities/templates/versions/{version.pk}/preview"
    r = client.get(url)
    assert r.status_code == 200 and 'value="SO20261203001"' in r.content.decode()
    r = client.get(url, {"preview": "1", "field_order_no": "SO-77"})
    assert _preview_text(r.content.decode()) == "亲爱的Xiao Ming，您在Morning runners的订单 SO-77 已处理。"
    r = client.get(url, {"preview": "1", "field_order_no": "!"})
    assert r.status_code == 400 and "is not an order number" in r.content.decode()
    assert _preview_text(r.content.decode()) is None
    CustomerFactory(nickname="<i>阿强</i>", external_id="cust-42")
    group = group_services.group_save(group=CommunityGroup(code="mine", name="我的群", owner=writer), actor=writer)
    r = client.get(url, {"preview": "1", "customer": "cust-42", "group": group.pk, "field_order_no": "SO-1"})
    assert _preview_text(r.content.decode()) == "亲爱的&lt;i&gt;阿强&lt;/i&gt;，您在我的群的订单 SO-1 已处理。"
    r = client.get(url, {"preview": "1", "customer": "nobody", "field_order_no": "SO-1"})
    assert r.status_code == 400 and "No customer with the external id nobody" in r.content.decode()


def test_a_second_manager_cannot_preview_with_the_first_ones_group(template, writer, second_manager):
    group = group_services.group_save(group=CommunityGroup(code="first", name="第一群", owner=writer), actor=writer)
    url = f"/communities/templates/versions/{template.versions.get().pk}/preview"
    r = _client(second_manager).get(url, {"preview": "1", "group": group.pk, "field_order_no": "SO-1"})
    html = r.content.decode()
    assert r.status_code == 404 and "第一群" not in html
    assert f"No community group {group.pk}." in html
    assert f'<option value="{group.pk}"' not in html  # not even in the group select
    r = _client(writer).get(url, {"preview": "1", "group": group.pk, "field_order_no": "SO-1"})
    assert "第一群" in _preview_text(r.content.decode())


# --- admin ---------------------------------------------------------------------------


def test_the_admin_creates_writes_versions_and_refuses_with_the_reason(approver, make_user):
    client = _client(approver)
    data = {
        "code": "bday",
        "name": "生日祝福",
        "kind": "birthday",
        "language": "zh-hans",
        "is_active": "on",
        "body": "生日快乐 {{ nickname.upper }}",
        "fields_declared": "[]",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }
    r = client.post("/admin/communities/soptemplate/add/", data)
    assert r.status_code == 200 and "attribute access" in r.content.decode()
    assert not SopTemplate.objects.filter(code="bday").exists()
    data["body"] = "生日快乐 {{ nickname }}"
    r = client.post("/admin/communities/soptemplate/add/", data)
    assert r.status_code == 302
    created = SopTemplate.objects.get(code="bday")
    v1 = created.versions.get()
    assert v1.status == VersionStatus.PENDING and v1.written_by == approver
    data.update(
        body="生日快乐，{{ nickname }}！",
        name="生日祝福（新）",
        **{
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-0-id": str(v1.pk),
            "versions-0-template": str(created.pk),
        },
    )
    r = client.post(f"/admin/communities/soptemplate/{created.pk}/change/", data)
    assert r.status_code == 302, r.content.decode()[:3000]
    created.refresh_from_db()
    assert created.name == "生日祝福（新）" and created.versions.count() == 2
    html = client.get(f"/admin/communities/soptemplate/{created.pk}/change/").content.decode()
    assert "sop_template.update" in html and "sop_template_version.write" in html
    # The writer may not approve; a second admin does, with the button.
    v2 = created.versions.get(number=2)
    r = client.post(f"/admin/communities/soptemplateversion/{v2.pk}/change/", {"_approve": "1"}, follow=True)
    assert "another approver must approve it" in r.content.decode()
    second = make_user("admin", "second-admin")
    r = _client(second).post(
        f"/admin/communities/soptemplateversion/{v2.pk}/change/", {"_reject": "1", "review_note": ""}, follow=True
    )
    assert "Say why the version is rejected." in r.content.decode()
    r = _client(second).post(f"/admin/communities/soptemplateversion/{v2.pk}/change/", {"_approve": "1"})
    assert r.status_code == 302
    created.refresh_from_db()
    assert created.approved_version == v2
    assert _client(second).get("/admin/communities/soptemplateversion/").status_code == 200
    # The list action approves what the actor did not write and says why it refuses the rest.
    v3 = services.version_write(template=created, body="v3 {{ nickname }}", actor=approver)
    v4 = services.version_write(template=created, body="v4 {{ nickname }}", actor=second)
    r = _client(second).post(
        "/admin/communities/soptemplateversion/",
        {"action": "approve_selected", "_selected_action": [v3.pk, v4.pk]},
        follow=True,
    )
    html = r.content.decode()
    assert "1 version approved." in html and "another approver must approve it" in html
    v3.refresh_from_db()
    v4.refresh_from_db()
    assert (v3.status, v4.status) == (VersionStatus.APPROVED, VersionStatus.PENDING)


@pytest.mark.parametrize(
    ("role", "writes", "approves"),
    [
        ("admin", True, True),
        ("community_manager", True, False),
        ("group_admin", False, False),
        ("viewer", False, False),
    ],
)
def test_the_roles_template_rights(make_user, role, writes, approves):
    user = make_user(role, f"r-{role}")
    assert user.has_perm("communities.view_soptemplate")
    assert user.has_perm("communities.add_soptemplate") is writes
    assert user.has_perm("communities.add_soptemplateversion") is writes
    assert user.has_perm("communities.approve_soptemplate") is approves
