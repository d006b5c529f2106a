"""The contact policy's one write path: the frequency caps and the policy knobs (quiet
hours, back-off, the A/B minimum sample), as admins edit them — validated, written and
audited (from → to) here, whether the admin's form or anything else calls.

A cap's ``windows`` is a list of ``{"seconds", "limit"}``: at most ``limit`` marketing
sends in any rolling window of ``seconds`` (``rules.Window``). A limit of 0 would hold
every send back for ever (withdraw the consent instead), and a window longer than a
year would make every send read a year of history, so both are refused.
"""

import re
from datetime import time
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import CapRule, ContactPolicy, ContentClass
from campaigns.selectors.policy import policy_settings
from core.errors import ApplicationError
from core.services import audit_record, audit_snapshot
from users.models import Channel

MAX_WINDOWS = 10
MAX_WINDOW_SECONDS = 366 * 86400
MAX_LIMIT = 100_000
CAP_FIELDS = ["code", "name", "channel", "content_class", "windows", "is_active"]
POLICY_FIELDS = ["quiet_start", "quiet_end", "backoff_after", "backoff_factor", "ab_min_sample"]
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


def _invalid(code: str, message: str, field: str | None = None, **details) -> ApplicationError:
    if field:
        details["field"] = field
    return ApplicationError(message, code=code, details=details, status=422)


def _whole(value) -> int | None:
    """An int (not a bool, not a float with a fraction), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def windows_check(windows) -> list[dict]:
    """The windows as stored (``[{"seconds": int, "limit": int}]``, shortest first), or
    the reason they are refused (``ApplicationError`` naming the field ``windows``)."""
    if not isinstance(windows, list) or not 1 <= len(windows) <= MAX_WINDOWS:
        raise _invalid(
            "invalid_windows",
            _('A cap has from 1 to %(max)s windows, each {"seconds": …, "limit": …}.') % {"max": MAX_WINDOWS},
            "windows",
        )
    out = []
    for index, window in enumerate(windows, start=1):
        if not isinstance(window, dict) or set(window) != {"seconds", "limit"}:
            raise _invalid(
                "invalid_windows",
                _("Window %(n)s: give exactly “seconds” and “limit”.") % {"n": index},
                "windows",
                window=index,
            )
        seconds, limit = _whole(window["seconds"]), _whole(window["limit"])
        if seconds is None or not 0 < seconds <= MAX_WINDOW_SECONDS:
            raise _invalid(
                "invalid_windows",
                _("Window %(n)s: “seconds” is a whole number from 1 to %(max)s (366 days).")
                % {"n": index, "max": MAX_WINDOW_SECONDS},
                "windows",
                window=index,
            )
        if limit is None or not 1 <= limit <= MAX_LIMIT:
            raise _invalid(
                "invalid_windows",
                _("Window %(n)s: “limit” is a whole number from 1 to %(max)s.") % {"n": index, "max": MAX_LIMIT},
                "windows",
                window=index,
            )
        out.append({"seconds": seconds, "limit": limit})
    lengths = [w["seconds"] for w in out]
    if len(set(lengths)) != len(lengths):
        raise _invalid(
            "invalid_windows", _("Two windows have the same length: keep the one with the lower limit."), "windows"
        )
    return sorted(out, key=lambda w: w["seconds"])


def cap_check(data: dict, *, cap: CapRule | None = None) -> dict:
    """A cap's values, complete and checked (``cap``'s current values fill what ``data``
    leaves out); ``ApplicationError`` with ``details["field"]`` otherwise."""
    unknown = sorted(set(data) - set(CAP_FIELDS))
    if unknown:
        raise _invalid("unknown_fields", _("Unknown field(s): %(f)s.") % {"f": ", ".join(unknown)}, fields=unknown)
    current = {f: getattr(cap, f) for f in CAP_FIELDS} if cap is not None else {}
    values = {"name": "", "channel": "", "content_class": "", "is_active": True, **current, **data}
    code = values.get("code")
    if not isinstance(code, str) or not _SLUG.match(code) or len(code) > 64:
        raise _invalid(
            "invalid_code", _("The code is a slug: letters, digits, hyphens and underscores, at most 64."), "code"
        )
    others = CapRule.objects.filter(code=code)
    if cap is not None and cap.pk is not None:
        others = others.exclude(pk=cap.pk)
    if others.exists():
        raise _invalid("duplicate_code", _("Another cap has the code “%(code)s”.") % {"code": code}, "code")
    name = values.get("name")
    if not isinstance(name, str) or len(name.strip()) > 100:
        raise _invalid("invalid_name", _("The name is text of at most 100 characters."), "name")
    values["name"] = name.strip() or code
    if values.get("channel") not in ["", *Channel.values]:
        raise _invalid("unknown_channel", _("Unknown channel."), "channel")
    if values.get("content_class") not in ContentClass.values:
        raise _invalid("invalid_content_class", _("Unknown content class."), "content_class")
    if not isinstance(values.get("is_active"), bool):
        raise _invalid("invalid_active", _("“Active” is yes or no."), "is_active")
    values["windows"] = windows_check(values.get("windows"))
    return {f: values[f] for f in CAP_FIELDS}


def cap_save(*, cap: CapRule | None, data: dict, actor) -> CapRule:
    """Creates a cap (``cap`` None) or changes one; audited ``cap.create`` / ``cap.update``.
    The row is re-read under a lock, so the audit's "from" is what was stored, whatever
    the caller did to ``cap`` (an admin form fills the instance before saving it)."""
    with transaction.atomic():
        stored = CapRule.objects.select_for_update().get(pk=cap.pk) if cap is not None and cap.pk else None
        values = cap_check(data, cap=stored)
        before = audit_snapshot(stored, CAP_FIELDS) if stored is not None else None
        target = stored or CapRule()
        for field, value in values.items():
            setattr(target, field, value)
        target.save()
        audit_record(
            actor=actor,
            action="cap.update" if stored is not None else "cap.create",
            obj=target,
            before=before or {},
            after=audit_snapshot(target, CAP_FIELDS),
        )
    return target


def _time(value, field: str) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(part) for part in value.strip().split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise _invalid("invalid_time", _("A time of day, HH:MM."), field)


def policy_check(data: dict, *, policy: ContactPolicy) -> dict:
    """The policy knobs, complete and checked (``policy``'s values fill what ``data``
    leaves out); ``ApplicationError`` with ``details["field"]`` otherwise."""
    unknown = sorted(set(data) - set(POLICY_FIELDS))
    if unknown:
        raise _invalid("unknown_fields", _("Unknown field(s): %(f)s.") % {"f": ", ".join(unknown)}, fields=unknown)
    values = {**{f: getattr(policy, f) for f in POLICY_FIELDS}, **data}
    values["quiet_start"] = _time(values["quiet_start"], "quiet_start")
    values["quiet_end"] = _time(values["quiet_end"], "quiet_end")
    backoff_after = _whole(values["backoff_after"])
    if backoff_after is None or not 1 <= backoff_after <= 20:
        raise _invalid("out_of_range", _("Back off after 1 to 20 unanswered sends."), "backoff_after")
    values["backoff_after"] = backoff_after
    try:
        factor = Decimal(str(values["backoff_factor"]))
    except (InvalidOperation, ValueError):
        factor = None
    if factor is None or not factor.is_finite() or not Decimal("0.1") <= factor <= 1:
        raise _invalid("out_of_range", _("The back-off factor is from 0.1 to 1."), "backoff_factor")
    values["backoff_factor"] = factor.quantize(Decimal("0.01"))
    sample = _whole(values["ab_min_sample"])
    if sample is None or not 1 <= sample <= 1_000_000:
        raise _invalid("out_of_range", _("The A/B minimum sample is from 1 to 1,000,000 per variant."), "ab_min_sample")
    values["ab_min_sample"] = sample
    return values


def policy_save(*, data: dict, actor) -> ContactPolicy:
    """Changes the one policy row (written with its defaults first if it is missing);
    audited ``policy.update``."""
    with transaction.atomic():
        policy = ContactPolicy.objects.select_for_update().order_by("pk").first() or policy_settings()
        values = policy_check(data, policy=policy)
        before = audit_snapshot(policy, POLICY_FIELDS) if policy.pk and not policy._state.adding else {}
        for field, value in values.items():
            setattr(policy, field, value)
        policy.save()
        audit_record(
            actor=actor, action="policy.update", obj=policy, before=before, after=audit_snapshot(policy, POLICY_FIELDS)
        )
    return policy
