from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Core")

    def ready(self):
        from . import checks, schema  # noqa: F401  register the system checks and the OpenAPI auth extension
        from .roles import roles_sync

        # Roles depend on permissions, which Django itself creates in post_migrate;
        # syncing there too keeps every database (fresh, test, production) in step.
        post_migrate.connect(roles_sync, dispatch_uid="core.roles_sync")

        # The admin's header and titles in the operator's language (not "Django administration").
        from django.contrib import admin

        admin.site.site_header = _("Ops Desk administration")
        admin.site.site_title = _("Ops Desk administration")
        admin.site.index_title = _("Data and settings")
