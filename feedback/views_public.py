"""The customers' survey pages, reached from the emailed links without logging in: the
signed token in the URL is the only key. GET shows the question (a ``?score=N`` from
the email's one-click links pre-selects that answer; a GET never records anything, so
a mail scanner following links answers nothing); POST records the answer. A forged,
expired or already answered link gets a page that says so, with nothing written. The
form is protected by Django's CSRF like every other form."""

from django import forms
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from core.errors import ApplicationError

from .selectors import satisfaction as selectors
from .services import satisfaction as services

# What the refusal page says, by the error's code.
REFUSALS = {
    "invalid_link": (_("Invalid link"), _("This link is not valid. Please use the link from your email as it is.")),
    "link_expired": (_("Link expired"), _("This survey link has expired. Thank you all the same.")),
    "already_answered": (_("Already answered"), _("This survey has already been answered. Thank you!")),
}


class AnswerForm(forms.Form):
    score = forms.TypedChoiceField(label=_("Your answer"), coerce=int)
    comment = forms.CharField(
        label=_("Anything you would like to tell us? (optional)"),
        required=False,
        max_length=services.MAX_COMMENT,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args, low: int, high: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["score"].choices = [(n, str(n)) for n in range(low, high + 1)]
        self.fields["score"].error_messages["invalid_choice"] = _("Please choose a score from %(low)s to %(high)s.") % {
            "low": low,
            "high": high,
        }
        self.fields["score"].error_messages["required"] = self.fields["score"].error_messages["invalid_choice"]


def _refused(request, exc: ApplicationError):
    title, text = REFUSALS.get(exc.code, (_("Something is wrong"), exc.message))
    return render(
        request,
        "feedback/public/refused.html",
        {"title": title, "text": text, "code": exc.code},
        status=exc.status_code,
    )


def _preselected(request, low: int, high: int) -> int | None:
    value = request.GET.get("score", "")
    return int(value) if value.isdigit() and low <= int(value) <= high else None


def _survey_page(request, *, kind: str, token: str, record, low: int, high: int, context: dict):
    form = AnswerForm(request.POST if request.method == "POST" else None, low=low, high=high)
    if request.method == "POST" and form.is_valid():
        try:
            record(token=token, score=form.cleaned_data["score"], comment=form.cleaned_data["comment"])
        except ApplicationError as exc:
            if exc.code not in ("invalid_score", "too_long"):
                return _refused(request, exc)
            form.add_error(None, exc.message)
        else:
            return render(request, "feedback/public/thanks.html", {"kind": kind})
    selected = form.data.get("score", "") if form.is_bound else _preselected(request, low, high)
    return render(
        request,
        f"feedback/public/{kind}.html",
        {
            **context,
            "form": form,
            "scores": range(low, high + 1),
            "selected": "" if selected is None else str(selected),
        },
        status=400 if form.is_bound else 200,
    )


@require_http_methods(["GET", "POST"])
def csat(request, token: str):
    try:
        ticket = selectors.csat_invitation(token=token)
    except ApplicationError as exc:
        return _refused(request, exc)
    return _survey_page(
        request,
        kind="csat",
        token=token,
        record=services.csat_record,
        low=1,
        high=5,
        context={"ticket": ticket},
    )


@require_http_methods(["GET", "POST"])
def nps(request, token: str):
    try:
        survey, _customer = selectors.nps_invitation(token=token)
    except ApplicationError as exc:
        return _refused(request, exc)
    return _survey_page(
        request,
        kind="nps",
        token=token,
        record=services.nps_record,
        low=0,
        high=10,
        context={"survey": survey},
    )
