"""Admin building blocks shared by every app's admin.

Lists stay fast at millions of rows (issue 10): ``ScaledListMixin`` (every
registered admin uses it, a test says so) never counts a big table in full —
``EstimatedCountPaginator`` counts at most ``EXACT_UP_TO`` rows exactly and
estimates beyond that (PostgreSQL's ``pg_class.reltuples`` for an unfiltered
list, the planner's row estimate for a filtered one) — and ``DistinctValuesFilter``
lists a column's values with an index skip-scan instead of a ``DISTINCT`` over the
whole table. Date drill-downs (``date_hierarchy``) read every row's date to list
the years, so big tables filter by date with ``DateFieldListFilter`` instead."""

import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections, models
from django.db.models import Q
from django.utils.functional import cached_property

from .selectors import display_name, display_name_keys
from .validation import validate_form_instant

EXACT_UP_TO = 10_000


def _is_postgres(queryset) -> bool:
    return connections[queryset.db].vendor == "postgresql"


def estimated_count(queryset) -> int | None:
    """PostgreSQL's estimate of ``queryset.count()``: the table's statistics when the
    query has no filter, the planner's row estimate otherwise (None elsewhere or when
    the table was never analysed)."""
    if not _is_postgres(queryset):
        return None
    if not queryset.query.where and not queryset.query.combinator:
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [queryset.model._meta.db_table]
            )
            row = cursor.fetchone()
        return row[0] if row and row[0] >= 0 else None
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to ``EXACT_UP_TO`` rows (a LIMITed count, cheap with any
    index) and estimates above it on PostgreSQL, so no page counts 10 million rows."""

    exact_up_to = EXACT_UP_TO

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not hasattr(queryset, "query") or not _is_postgres(queryset):
            return super().count
        capped = queryset.order_by()[: self.exact_up_to + 1].count()
        if capped <= self.exact_up_to:
            return capped
        return max(estimated_count(queryset) or 0, capped)


class ScaledListMixin:
    """The list settings every admin uses: no full count, estimated pagination, no
    facet counts, and exact-key search that each index can answer on its own."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        """Every instant an admin types lies in the accepted range (1970–2100,
        ``core.validation``), as in the API: a reward valid "until 9999" would break
        every page that shows it in the operators' timezone. (Plain dates, such as a
        birthday, keep their own rules.)"""
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        wanted = isinstance(db_field, models.DateTimeField) and formfield is not None
        if wanted and validate_form_instant not in formfield.validators:
            formfield.validators.append(validate_form_instant)
        return formfield

    def get_search_results(self, request, queryset, search_term):
        """When every search field is an exact key (``=field``), the whole term is
        looked up in each, and a related key (``=customer__external_id``) is looked up
        first and becomes ``customer_id IN (ids)``: with the OR of a JOIN or of a
        subquery PostgreSQL scans the whole big table; with plain values it ORs two
        index scans."""
        fields = list(self.get_search_fields(request))
        term = search_term.strip()
        if not term or not fields or not all(f.startswith("=") for f in fields):
            return super().get_search_results(request, queryset, search_term)
        match = Q()
        for path in (f[1:] for f in fields):
            head, _, rest = path.partition("__")
            field = queryset.model._meta.get_field(head)
            if rest and field.many_to_one:
                related = field.related_model._default_manager.filter(**{rest: term})
                keys = list(related.values_list("pk", flat=True)[:1000])
                match |= Q(**{f"{field.attname}__in": keys})
            else:
                match |= Q(**{path: term})
        return queryset.filter(match), False


class ScaledAdmin(ScaledListMixin, admin.ModelAdmin):
    pass


class DistinctValuesFilter(admin.AllValuesFieldListFilter):
    """The column's values by a recursive skip-scan over an index leading with the
    column on PostgreSQL (one index probe per distinct value, not a full scan);
    Django's ``DISTINCT`` elsewhere. Use it only on a column that such an index leads."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        queryset = model_admin.get_queryset(request)
        if field_path != field.name or not _is_postgres(queryset):
            return
        table = connections[queryset.db].ops.quote_name(model._meta.db_table)
        column = connections[queryset.db].ops.quote_name(field.column)
        sql = (
            f"WITH RECURSIVE v(x) AS (SELECT min({column}) FROM {table} UNION ALL "
            f"SELECT (SELECT min({column}) FROM {table} WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL) "
            "SELECT x FROM v WHERE x IS NOT NULL"
        )
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(sql)
            self.lookup_choices = [row[0] for row in cursor.fetchall()]


class DisplayValuesFilter(DistinctValuesFilter):
    """The stored values of a data-key column (found by the skip-scan above), each
    labelled by its display name in the operator's language (``core.DisplayName``)."""

    display_kind = ""

    def choices(self, changelist):
        stored = {str(v) for v in self.lookup_choices}
        for choice in super().choices(changelist):
            shown = choice.get("display")
            if isinstance(shown, str) and shown in stored:
                choice = {**choice, "display": display_name(self.display_kind, shown)}
            yield choice


def display_values_filter(kind: str) -> type[DisplayValuesFilter]:
    """``("type", display_values_filter("event_type"))`` in a ``list_filter``."""
    return type(f"{kind.title().replace('_', '')}ValuesFilter", (DisplayValuesFilter,), {"display_kind": kind})


class ReadOnlyAdmin(ScaledAdmin):
    """For records only services write (ledgers, history, engine output, audit):
    shown in the admin, never added, edited or deleted by hand there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def display_name_column(field: str, kind: str, description):
    """A changelist column showing a data key (``channel``, an event ``type``) by its
    display name in the operator's language; sorts by the stored key."""

    @admin.display(description=description, ordering=field)
    def column(obj):
        return display_name(kind, getattr(obj, field))

    column.__name__ = f"{field}_display"
    return column


class DisplayNameFilter(admin.SimpleListFilter):
    """A sidebar filter on a data key listing the known keys by their display names
    (from the small DisplayName table: no DISTINCT over a big table)."""

    kind = ""
    field = ""

    def lookups(self, request, model_admin):
        return [(key, display_name(self.kind, key)) for key in display_name_keys(self.kind)]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


def display_name_filter(field: str, kind: str, title) -> type[DisplayNameFilter]:
    return type(
        f"{field.title()}DisplayNameFilter",
        (DisplayNameFilter,),
        {"title": title, "parameter_name": field, "kind": kind, "field": field},
    )
