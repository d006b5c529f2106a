"""The customer profile's ``communities`` (API and 360 page) and the segment condition
"member of group X (with role R)": open memberships only, read for many customers in one
query; the condition selects exactly the right customers (SQLite and PostgreSQL), its
role filter narrows, and an unknown group or role is refused with a clear message."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from communities.models import CommunityGroup, MemberRole
from communities.selectors.members import customer_communities
from communities.services import groups as group_services
from segments.builder import builder_meta
from segments.definitions import DefinitionError, compile_definition
from segments.models import SegmentMembership
from segments.services import segment_save
from tests.users.factories import CustomerFactory
from users.models import Customer

pytestmark = pytest.mark.django_db

JOINED = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def world(make_user):
    """runners: c1 (koc), c2 (member), c3 left; swim: c2 (admin), c3 (member); c4 in none."""
    owner = make_user("community_manager", "mgr-one")
    runners = group_services.group_save(
        group=CommunityGroup(code="runners", name="跑步群", owner=owner, platform="wechat"), actor=owner
    )
    swim = group_services.group_save(
        group=CommunityGroup(code="swim", name="游泳群", owner=owner, platform="qq"), actor=owner
    )
    c = {f"c{i}": CustomerFactory(external_id=f"c{i}") for i in range(1, 5)}
    join = group_services.member_join
    join(group=runners, customer=c["c1"], role=MemberRole.KOC, joined_at=JOINED)
    join(group=runners, customer=c["c2"], joined_at=JOINED)
    join(group=runners, customer=c["c3"], joined_at=JOINED - timedelta(days=30))
    group_services.member_leave(group=runners, customer=c["c3"], left_at=JOINED - timedelta(days=2))
    join(group=swim, customer=c["c2"], role=MemberRole.ADMIN, joined_at=JOINED + timedelta(hours=1))
    join(group=swim, customer=c["c3"], joined_at=JOINED)
    return {"owner": owner, "runners": runners, "swim": swim, **c}


def _members(definition) -> set[str]:
    q = compile_definition(definition, run_id=None)
    return set(Customer.objects.filter(q).values_list("external_id", flat=True))


def _one(**condition):
    return {"op": "and", "conditions": [{"field": "community", **condition}]}


# --- the profile field ---------------------------------------------------------------


def test_customer_communities_reads_open_memberships_of_many_customers_in_one_query(world, django_assert_num_queries):
    ids = [world[k].pk for k in ("c1", "c2", "c3", "c4")]
    with django_assert_num_queries(1):
        found = customer_communities(customer_ids=ids)
    assert found[world["c1"].pk] == [
        {"group": "runners", "name": "跑步群", "platform": "wechat", "role": "koc", "joined_at": JOINED.isoformat()}
    ]
    assert [m["group"] for m in found[world["c2"].pk]] == ["runners", "swim"]
    assert [m["group"] for m in found[world["c3"].pk]] == ["swim"]  # the runners span has ended
    assert found[world["c4"].pk] == []


def test_the_profile_api_carries_the_open_memberships(world, api):
    body = api.get("/api/v1/customers/c2").json()
    assert body["communities"] == [
        {
            "group": "runners",
            "name": "跑步群",
            "platform": "wechat",
            "role": "member",
            "joined_at": body["communities"][0]["joined_at"],
        },
        {
            "group": "swim",
            "name": "游泳群",
            "platform": "qq",
            "role": "admin",
            "joined_at": body["communities"][1]["joined_at"],
        },
    ]
    assert datetime.fromisoformat(body["communities"][1]["joined_at"]) == JOINED + timedelta(hours=1)
    assert api.get("/api/v1/customers/c4").json()["communities"] == []


def test_the_360_page_shows_only_the_memberships_of_groups_the_operator_sees(world, client, make_user):
    client.force_login(make_user("operator", "op"))
    html = client.get("/customers/c2/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-section="communities"' in html
    assert f'href="/communities/groups/{world["runners"].pk}/"' in html and 'data-role-value="admin"' in html
    client.force_login(make_user("community_manager", "mgr-two"))
    other = client.get("/customers/c2/", HTTP_ACCEPT_LANGUAGE="en")
    assert other.status_code == 200
    rows = other.context["communities_panel"]["rows"]
    assert rows == []
    other_html = other.content.decode()
    assert "/communities/groups/" not in other_html and "runners" not in other_html


# --- the segment condition -----------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"op": "eq", "value": "runners"}, {"c1", "c2"}),
        ({"op": "eq", "value": "runners", "role": "koc"}, {"c1"}),
        ({"op": "eq", "value": "runners", "role": ["koc", "member"]}, {"c1", "c2"}),
        ({"op": "in", "value": ["runners", "swim"], "role": "admin"}, {"c2"}),
        ({"op": "in", "value": ["runners", "swim"]}, {"c1", "c2", "c3"}),
        ({"op": "ne", "value": "runners"}, {"c3", "c4"}),
        ({"op": "not_in", "value": ["swim"], "role": "member"}, {"c1", "c2", "c4"}),
    ],
)
def test_member_of_group_with_role_selects_the_right_customers(world, condition, expected):
    assert _members(_one(**condition)) == expected


def test_the_condition_combines_with_others_and_a_saved_segment_materialises_it(world):
    definition = {
        "op": "or",
        "conditions": [
            {"field": "community", "op": "eq", "value": "swim", "role": "member"},
            {"field": "community", "op": "eq", "value": "runners", "role": "koc"},
        ],
    }
    segment = segment_save(name="社群核心", definition=definition, actor=world["owner"])
    stored = set(SegmentMembership.objects.filter(segment=segment).values_list("customer__external_id", flat=True))
    assert stored == {"c1", "c3"}
    segment.refresh_from_db()
    assert segment.size == 2


@pytest.mark.parametrize(
    ("condition", "path", "words"),
    [
        ({"op": "eq", "value": "nowhere"}, "definition.conditions[0].value", "unknown community group 'nowhere'"),
        ({"op": "in", "value": ["swim", "ghost"]}, "definition.conditions[0].value", "'ghost'"),
        ({"op": "eq", "value": "swim", "role": "owner"}, "definition.conditions[0].role", "unknown role 'owner'"),
        ({"op": "eq", "value": "swim", "role": []}, "definition.conditions[0].role", "a role or a list"),
        ({"op": "contains", "value": "sw"}, "definition.conditions[0].op", "community takes op"),
        ({"op": "eq", "value": 7}, "definition.conditions[0].value", "expected a text value"),
    ],
)
def test_bad_group_or_role_is_refused_with_a_clear_message(world, condition, path, words):
    with pytest.raises(DefinitionError) as exc:
        compile_definition(_one(**condition), run_id=None)
    assert exc.value.details["path"] == path
    assert words in exc.value.details["message"]


def test_an_unknown_group_is_refused_by_the_preview_and_the_save(world, client, make_user):
    client.force_login(make_user("operator", "op"))
    response = client.post(
        reverse("segments:preview"),
        data=json.dumps({"definition": _one(op="eq", value="nowhere")}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "unknown community group 'nowhere'; known: 'runners', 'swim'" in response.json()["error"]["message"]
    from segments.models import Segment

    with pytest.raises(DefinitionError):
        segment_save(name="x", definition=_one(op="eq", value="swim", role="boss"), actor=world["owner"])
    assert not Segment.objects.filter(name="x").exists()
    ok = client.post(
        reverse("segments:preview"),
        data=json.dumps({"definition": _one(op="eq", value="swim", role="admin")}),
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["size"] == 1 and ok.json()["sample"] == ["c2"]


def test_the_builder_offers_the_groups_and_roles(world):
    meta = builder_meta()
    field = next(f for f in meta["fields"] if f["name"] == "community")
    assert field["ops"] == ["eq", "ne", "in", "not_in"]
    assert sorted(code for code, _label in field["choices"]) == ["runners", "swim"]
    assert ["runners", "跑步群 (runners)"] in field["choices"]
    assert [key for key, _label in meta["community_roles"]] == ["", "member", "admin", "koc"]


def test_the_refusal_reads_in_chinese_for_a_chinese_operator(world):
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(DefinitionError) as exc:
        compile_definition(_one(op="eq", value="nowhere"), run_id=None)
    assert "未知的社群 'nowhere'" in exc.value.details["message"]
