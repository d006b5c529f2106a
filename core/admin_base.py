from django.contrib import admin

from .selectors import display_name, display_name_keys


class ReadOnlyAdmin(admin.ModelAdmin):
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
