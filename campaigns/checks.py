"""``manage.py check``: the channels' backends as configured (a gateway URL that is not
one, a webhook without a secret) are reported before anything is sent."""

from django.core.checks import Error, Tags, register

from campaigns.backends import check_configuration


@register(Tags.compatibility)
def channel_backends_check(app_configs=None, **kwargs):
    return [Error(str(problem), id="campaigns.E001") for problem in check_configuration()]
