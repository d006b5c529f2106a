"""OpenAPI: describe the API-key scheme to drf-spectacular."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "opsk_<prefix>_<secret>",
            "description": "An API key created by an admin (admin → API keys, or `manage.py create_api_key`).",
        }
