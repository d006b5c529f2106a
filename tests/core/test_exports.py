"""Issue 9, class 10: no export carries a live formula (CSV injection)."""

import csv
import io
import re
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exports import FORMULA_PREFIXES, csv_writer, escape_formula, unescape_formula
from tests.users.factories import CustomerFactory
from users.models import Customer
from users.resources import CustomerResource

pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("http://x","click")'


def _export(client, fmt: str):
    return client.post(
        "/admin/users/customer/export/",
        {"format": fmt, "resource": "0", **{f"customerresource_{n}": "on" for n in ["external_id", "name", "city"]}},
    )


def _content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("evil", [EVIL, "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1+1"])
def test_admin_csv_export_neutralises_formulas(admin_client, evil):
    CustomerFactory(external_id="c1", name=evil, city="-12.5")
    response = _export(admin_client, "0")
    assert response.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(_content(response).decode("utf-8-sig"))))
    assert row["name"] == "'" + evil
    assert row["city"] == "-12.5"  # a plain number is not a formula


def test_admin_xlsx_export_writes_text_not_a_formula(admin_client):
    CustomerFactory(external_id="c1", name=EVIL)
    response = _export(admin_client, "1")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(_content(response))).active
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("name") + 1)
    assert cell.data_type == "s"  # a string cell, not "f" (formula)
    assert cell.value == "'" + EVIL


def test_an_escaped_export_reimports_unchanged(admin_client):
    from core.exports import SafeCSV

    CustomerFactory(external_id="c1", name=EVIL)
    exported = SafeCSV().export_data(CustomerResource(pii=True).export(Customer.objects.all()))
    assert "'=HYPERLINK" in exported
    dataset = SafeCSV().create_dataset(exported)
    assert dataset.dict[0]["name"] == EVIL
    result = CustomerResource(pii=True).import_data(dataset, dry_run=False, use_transactions=True)
    assert not result.has_errors() and not result.has_validation_errors()
    assert Customer.objects.get().name == EVIL


@given(st.text(min_size=1, max_size=20))
def test_no_escaped_value_starts_a_formula_and_unescape_inverts(value):
    escaped = escape_formula(value)
    assert not escaped.startswith(FORMULA_PREFIXES) or re.fullmatch(r"[+-]?\d+(\.\d+)?", escaped)
    assert unescape_formula(escaped) == value or value.startswith("'")


def test_hand_written_csv_goes_through_the_helper():
    out = io.StringIO()
    csv_writer(out).writerow([EVIL, 3, "ok"])
    assert out.getvalue().startswith('"\'=HYPERLINK(""http://x"",""click"")",3,ok')
    root = Path(__file__).resolve().parents[2]
    raw_writers = [
        str(p.relative_to(root))
        for app in (
            "core",
            "users",
            "segments",
            "incentives",
            "campaigns",
            "feedback",
            "communities",
            "console",
            "dashboards",
        )
        for p in (root / app).rglob("*.py")
        if re.search(r"csv\.(writer|DictWriter)\(", p.read_text()) and p.name != "exports.py"
    ]
    assert raw_writers == []  # every CSV export escapes formulas (core.exports.csv_writer)
