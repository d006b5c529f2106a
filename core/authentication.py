"""``Authorization: Bearer opsk_<prefix>_<secret>`` for the product backend."""

import hmac
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions

from .models import KEY_PREFIX, ApiKey, hash_secret


class ApiClient:
    """The ``request.user`` of an API-key request: authenticated, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.username = f"api-key:{key.name}"
        self.pk = None

    def has_perm(self, perm: str) -> bool:
        return False

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        # A blank header has no parts; the scheme is case-insensitive (RFC 9110).
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header: use 'Bearer <api key>'."))
        try:
            prefix_tag, prefix, secret = parts[1].split("_", 2)
        except ValueError:
            raise exceptions.AuthenticationFailed(_("Malformed API key.")) from None
        if prefix_tag != KEY_PREFIX:
            raise exceptions.AuthenticationFailed(_("Malformed API key."))
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None or not hmac.compare_digest(key.hashed_secret, hash_secret(secret)):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        now = timezone.now()
        reason = key.inactive_reason(now)
        if reason == "revoked":
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."))
        if reason is not None:
            raise exceptions.AuthenticationFailed(_("This API key has expired."))
        # One write a minute at most, not one per request.
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ApiClient(key), key

    def authenticate_header(self, request):
        return self.keyword
