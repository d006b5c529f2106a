"""Operator pages for customers: the search. Phone numbers and emails are masked
unless the operator holds ``users.view_pii``. The 360 page shows other apps'
sections too, so it is composed in ``console.views``."""

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import render

from core.pii import mask_email, mask_phone

from . import selectors

SEARCH_PAGE_SIZE = 25


def pii_displays(customer, *, can_see_pii: bool) -> dict:
    """The customer's phone and email as this operator may see them."""
    if can_see_pii:
        return {"phone": customer.phone, "email": customer.email}
    return {"phone": mask_phone(customer.phone), "email": mask_email(customer.email)}


@login_required
@permission_required("users.view_customer", raise_exception=True)
def customer_search(request):
    query = request.GET.get("q", "").strip()[:100]
    can_see_pii = request.user.has_perm("users.view_pii")
    page_obj = None
    rows = []
    if query:
        # Phone and email are searched only for those who may see them (else: a PII oracle).
        customers = selectors.customer_list(search=query, search_pii=can_see_pii).order_by("-signup_at", "-id")
        page_obj = Paginator(customers, SEARCH_PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [{"customer": c, **pii_displays(c, can_see_pii=can_see_pii)} for c in page_obj]
    return render(
        request,
        "users/customer_search.html",
        {
            "query": query,
            "page_obj": page_obj,
            "rows": rows,
            "can_see_pii": can_see_pii,
            "display_tz": settings.OPS_DEFAULT_CUSTOMER_TIMEZONE,
        },
    )
