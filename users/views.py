from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render


@login_required
@permission_required("users.view_customer", raise_exception=True)
def customer_search(request):
    return render(request, "users/customer_search.html", {})


@login_required
@permission_required("users.view_customer", raise_exception=True)
def customer_detail(request, external_id):
    return render(request, "users/customer_detail.html", {})
