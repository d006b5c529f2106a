"""The group a page is about, as the operator may reach it (``communities.access``), in
the pages' terms: ``Http404`` for a group they may not see (nothing of it leaks),
``PermissionDenied`` (403) for one they see without the right asked for. Shared by the
groups, calendar and health pages (folded from three copies in the review)."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from core.errors import ApplicationError, NotFound

from . import access
from .models import CommunityGroup


def page_group(request, group_id, *, right: str | None = None) -> CommunityGroup:
    try:
        return access.group_get(request.user, group_id, right=right)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        raise PermissionDenied(exc.message) from exc
