from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = _("Feedback")

    def ready(self):
        from .defaults import defaults_install

        # After every migrate and every test flush: the shipped teams, calendar, SLA policies and matrix.
        post_migrate.connect(defaults_install, sender=self, dispatch_uid="feedback.defaults_install")
