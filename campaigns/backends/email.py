"""The email backend: Django's email API, so ``EMAIL_BACKEND`` decides the transport
(SMTP in production, locmem in tests, the console in development).

Every message carries ``X-Ops-Delivery`` and ``X-Ops-Idempotency-Key``; a marketing
message with an unsubscribe link also carries ``List-Unsubscribe: <url>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058 one-click; the MTA's
DKIM signature must cover both for mailbox providers to honour them).

SMTP answers: a dropped or refused connection, a time-out and any 4xx reply are
temporary (retry); other SMTP errors are permanent (failed). Errors carry the reply
code only: a server's reply text often quotes the recipient's address."""

import smtplib

from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, EmailMessage, get_connection
from django.core.validators import validate_email

from .base import FAILED, RETRY, SENT, Handover, Outcome


class EmailBackend:
    name = "email"

    def send(self, handover: Handover) -> Outcome:
        address = (handover.address or "").strip()
        try:
            validate_email(address)
        except ValidationError:
            return Outcome(FAILED, "no address")
        headers = {
            "X-Ops-Delivery": str(handover.delivery_id),
            "X-Ops-Idempotency-Key": handover.idempotency_key,
        }
        if handover.category == "marketing" and handover.unsubscribe_url:
            headers["List-Unsubscribe"] = f"<{handover.unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message = EmailMessage(
            # A subject is one header line: a template's stray line break is a space.
            subject=" ".join(handover.subject.splitlines()),
            body=handover.body,
            to=[address],
            headers=headers,
            connection=get_connection(),
        )
        try:
            sent = message.send()
        except BadHeaderError:
            return Outcome(FAILED, "bad header")
        except ValueError:  # an address Django's mail cannot encode
            return Outcome(FAILED, "bad message")
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError):
            return Outcome(RETRY, "connection error")
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(exc)
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            return Outcome(RETRY if 400 <= code < 500 else FAILED, f"SMTP {code}")
        except smtplib.SMTPException as exc:
            return Outcome(FAILED, f"SMTP error: {type(exc).__name__}")
        except TimeoutError:  # socket.timeout is TimeoutError
            return Outcome(RETRY, "timeout")
        except OSError:  # refused, unreachable, reset, TLS handshake cut
            return Outcome(RETRY, "connection error")
        if not sent:
            return Outcome(FAILED, "not sent")
        return Outcome(SENT)


def _refused(exc: smtplib.SMTPRecipientsRefused) -> Outcome:
    """Every recipient refused (here: the one): retry when each refusal was a 4xx."""
    codes = sorted({code for code, _text in exc.recipients.values()})
    temporary = bool(codes) and all(400 <= code < 500 for code in codes)
    error = ("SMTP " + ",".join(map(str, codes))) if codes else "SMTP refused"
    return Outcome(RETRY if temporary else FAILED, error)
