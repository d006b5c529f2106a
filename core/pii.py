"""Masking of phone numbers and emails for viewers without the "view PII" permission."""

import re

# Log lines carry URLs, so both patterns also match the URL-encoded forms of what they
# look for: ``%40`` for ``@``, ``%2B`` for ``+``, ``+`` or ``%20`` for a space between
# digit groups, and any ``%XX`` inside an email's local part. A match may start right
# after an encoded character (``q%3D13912345678``), where a plain word boundary fails.
# (Double-encoded text, ``%2540``, is not decoded: no client sends it by mistake.)
_HEX = r"%[0-9A-Fa-f]{2}"
_START = rf"(?:(?<![\w])|(?<={_HEX}))"
# At least 8 digits, at most one separator between two (so a log's "23 +0000" is no
# phone), and not an ISO date ("2026-03-01 10…").
_PHONE_RE = re.compile(rf"{_START}(?!\d{{4}}-\d\d-\d\d(?!\d))((?:\+|%2[Bb])?\d(?:(?:[\- +]|%20)?\d){{7,}})(?![\w])")
_EMAIL_RE = re.compile(rf"((?:[\w.+-]|{_HEX})+)(?:@|%40)([\w-]+(?:\.[\w-]+)+)")
_PHONE_SEPARATORS_RE = re.compile(r"%20|[\s+-]")


def mask_phone(phone: str | None) -> str:
    """``13812341633`` → ``138****1633``; short values keep only their last two digits."""
    if not phone:
        return phone or ""
    if len(phone) <= 7:
        return "*" * (len(phone) - 2) + phone[-2:]
    return phone[:3] + "*" * 4 + phone[-4:]


def mask_email(email: str | None) -> str:
    """``zhang.wei@example.com`` → ``z***@example.com``."""
    if not email:
        return email or ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_text(text: str) -> str:
    """Masks every phone number and email inside free text (used for log lines)."""
    text = _EMAIL_RE.sub(_email_masked, text)
    return _PHONE_RE.sub(_phone_masked, text)


def _email_masked(match: re.Match) -> str:
    local = match.group(1)
    return f"{'*' if local.startswith('%') else local[0]}***@{match.group(2)}"


def _phone_masked(match: re.Match) -> str:
    raw = match.group(1)
    plus = "+" if raw.startswith(("+", "%2B", "%2b")) else ""
    digits = _PHONE_SEPARATORS_RE.sub("", re.sub(r"^(?:\+|%2[Bb])", "", raw))
    return mask_phone(plus + digits)
