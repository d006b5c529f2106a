"""The customers' one-click unsubscribe page, reached from a marketing message without
logging in: the signed token is the only key. GET asks (a GET never changes anything,
so a link scanner unsubscribes nobody); POST unsubscribes — from the page's button or
straight from a mail client (RFC 8058 ``List-Unsubscribe=One-Click``, which carries no
CSRF token: the signature is what protects it, so the view is CSRF-exempt). Using a
link again gives the same answer; a forged or altered one is refused with nothing
written."""

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.errors import ApplicationError
from users.models import Channel

from .services import tracking
from .services import unsubscribe as services


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        if request.method == "POST":
            _customer, channel = services.unsubscribe_by_link(token=token)
        else:
            _customer, channel = services.unsubscribe_read(token=token)
    except ApplicationError as exc:
        return render(
            request, "campaigns/public/refused.html", {"code": exc.code, "text": exc.message}, status=exc.status_code
        )
    labels = dict(Channel.choices)
    return render(
        request,
        "campaigns/public/unsubscribe.html",
        {"done": request.method == "POST", "channel": channel, "channel_label": labels.get(channel, channel)},
    )


@require_http_methods(["GET", "HEAD"])
def click(request, token: str):
    """A tracked link: records the click, then sends the customer where the message
    pointed (only a URL a message carried: the token signs it)."""
    try:
        url = tracking.click_record(token=token)
    except ApplicationError as exc:
        return render(
            request, "campaigns/public/refused.html", {"code": exc.code, "text": exc.message}, status=exc.status_code
        )
    return HttpResponseRedirect(url)
