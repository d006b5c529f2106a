"""gunicorn settings for every way the app is served (Procfile.demo, the Dockerfile,
docker-compose.yml and the benchmarks all start gunicorn from the repository root,
where gunicorn reads this file; the commands also name it with ``--config``).

Request limits, chosen knowingly (README: "Bad input"):

* ``limit_request_line`` 4094 bytes (gunicorn's default, kept): the longest URL the
  API and the pages build — a customer list with every filter and a cursor — is well
  under 1 KB. A longer request line is answered by gunicorn itself with 414, before
  Django, in gunicorn's plain-text format.
* ``limit_request_fields`` 50 headers (default 100): browsers and the product
  backend send fewer than 20.
* ``limit_request_field_size`` 8190 bytes per header (the default): room for the
  session and CSRF cookies and an ``Authorization: Bearer`` key.
* The body is bounded by Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (10 MiB), answered
  413 ``request_too_large`` in the API's error shape.

The access log masks phone numbers and emails (``core.logging.GunicornLogger``).
"""

limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

logger_class = "core.logging.GunicornLogger"
