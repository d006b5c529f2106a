"""The channels' configuration is checked by ``manage.py check``."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def test_a_webhook_without_a_secret_or_a_bad_value_fails_the_system_check(settings):
    settings.OPS_CHANNEL_BACKENDS = dict.fromkeys(settings.OPS_CHANNELS, "log") | {"sms": "https://gw.example/sms"}
    settings.OPS_CHANNEL_SECRETS = dict.fromkeys(settings.OPS_CHANNELS, "")
    with pytest.raises(SystemCheckError, match="OPS_CHANNEL_SMS_SECRET"):
        call_command("check")
    settings.OPS_CHANNEL_SECRETS = {**settings.OPS_CHANNEL_SECRETS, "sms": "s3cret"}
    settings.OPS_CHANNEL_BACKENDS = {**settings.OPS_CHANNEL_BACKENDS, "push": "carrier-pigeon"}
    with pytest.raises(SystemCheckError, match="OPS_CHANNEL_PUSH"):
        call_command("check")
    settings.OPS_CHANNEL_BACKENDS = {**settings.OPS_CHANNEL_BACKENDS, "push": "log"}
    call_command("check")  # all well again
