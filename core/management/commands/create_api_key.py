from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from core.models import ApiScope
from core.services import api_key_create


class Command(BaseCommand):
    help = "Creates an API key and prints it once. Only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            choices=ApiScope.values,
            help="repeat for several; default: every scope",
        )
        parser.add_argument("--rate", default="", help="rate limit such as 6000/min (default from settings)")

    def handle(self, *args, name, scopes, rate, **options):
        try:
            _key, full = api_key_create(name=name, scopes=scopes or list(ApiScope.values), rate_limit=rate)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(full)
