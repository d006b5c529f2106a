from rest_framework.permissions import BasePermission

from .models import ApiKey


def request_can_see_pii(request) -> bool:
    key = getattr(request, "auth", None)
    if isinstance(key, ApiKey):
        return key.has_scope("customers:pii")
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.has_perm("users.view_pii"))


class ScopePermission(BasePermission):
    """API keys need the view's scope for the method; operators need the Django permission.

    A view declares ``required_scopes = {"GET": "customers:read", "POST": "customers:write"}``
    and ``required_perms = {"GET": "users.view_customer", ...}``.
    """

    message = "This API key or account lacks the permission for this action."

    def has_permission(self, request, view):
        key = request.auth
        if request.user and request.user.is_authenticated and request.method not in view.allowed_methods:
            return True  # a method the view does not have: DRF answers 405 with an Allow header
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        if isinstance(key, ApiKey):
            scope = getattr(view, "required_scopes", {}).get(method)
            return bool(scope) and key.has_scope(scope)
        user = request.user
        if not (user and user.is_authenticated):
            return False
        perm = getattr(view, "required_perms", {}).get(method)
        return bool(perm) and user.has_perm(perm)
