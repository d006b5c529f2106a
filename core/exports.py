"""Spreadsheet-safe exports: no cell a spreadsheet program would run as a formula.

A value that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel, LibreOffice and Google Sheets as a formula (``=HYPERLINK(…)``, DDE):
every export writes it with a leading apostrophe, the OWASP "CSV injection" advice,
so it shows as the text it is. Plain numbers (``-12.50``, ``+8613812345678``) are
left alone. Every file export goes through here: the admin's CSV/XLSX formats
(``EXPORT_FORMATS``) and hand-written CSV (``csv_writer``). Importing one of these
files takes the apostrophe off again, so an exported file re-imports unchanged.

(django-import-export's own ``IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT`` only drops a
leading ``=`` — ``+``, ``-`` and ``@`` pass — and turns every cell into text, so it
stays off; see settings.)
"""

import csv
import re

import tablib
from import_export.formats.base_formats import CSV, XLSX

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_RE = re.compile(r"[+-]?\d+(?:\.\d+)?")


def escape_formula(value):
    """``'=HYPERLINK("http://x")'`` → ``"'=HYPERLINK(\\"http://x\\")"``; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _NUMBER_RE.fullmatch(value):
        return "'" + value
    return value


def unescape_formula(value):
    """The inverse, for files coming back in."""
    if isinstance(value, str) and value.startswith("'") and escape_formula(value[1:]) == "'" + value[1:]:
        return value[1:]
    return value


class _Writer:
    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row):
        return self._writer.writerow([escape_formula(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(stream, **kwargs) -> _Writer:
    """``csv.writer(stream)`` whose rows are escaped; use it for every hand-written CSV."""
    return _Writer(csv.writer(stream, **kwargs))


def _mapped(dataset: tablib.Dataset, func) -> tablib.Dataset:
    out = tablib.Dataset(headers=dataset.headers, title=dataset.title)
    for row in dataset:
        out.append([func(v) for v in row])
    return out


class _FormulaSafe:
    def export_data(self, dataset, **kwargs):
        return super().export_data(_mapped(dataset, escape_formula), **kwargs)

    def create_dataset(self, in_stream, **kwargs):
        return _mapped(super().create_dataset(in_stream, **kwargs), unescape_formula)


class SafeCSV(_FormulaSafe, CSV):
    pass


class SafeXLSX(_FormulaSafe, XLSX):
    pass


# The admin's import and export formats, in this order (CSV is "0", XLSX "1" in the form).
FORMATS = [SafeCSV, SafeXLSX]
