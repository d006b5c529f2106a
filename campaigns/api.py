"""REST API v1 for campaigns: one message now (``messages:write``), delivery results
(``messages:write``) and, in ``api_campaigns``, campaigns for automation."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.batch import validate_batch
from core.permissions import ScopePermission
from core.schema import error_responses
from core.validation import validate_body

from .rows import CallbackBatchIn, CallbackRow, MessageIn, MessageOut
from .services import messages, results


def delivery_out(delivery) -> dict:
    return {
        "id": delivery.pk,
        "status": delivery.status,
        "reason": delivery.reason,
        "rule": delivery.rule,
        "send_after": delivery.send_after.isoformat() if delivery.send_after else None,
    }


class MessageApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "messages:write"}
    required_perms = {"POST": "campaigns.add_delivery"}

    @extend_schema(
        request=MessageIn,
        responses={202: MessageOut, 200: MessageOut, **error_responses(400, 404, 409, 422)},
        summary="Send one message now under the contact policy (idempotent by idempotency_key)",
        description="Answers 202 with the delivery: queued (handed over right away), deferred (with "
        "send_after) or suppressed (with the reason and the deciding rule). A replay answers 200 "
        "with the delivery first written.",
    )
    def post(self, request):
        body = validate_body(MessageIn, request.data)
        result = messages.message_send(
            customer_external_id=body.customer,
            channel=body.channel,
            category=body.category,
            idempotency_key=body.idempotency_key,
            content=body.content or "",
            template=body.template or "",
            subject=body.subject,
            content_class=body.content_class,
            actor=request.user,
        )
        return Response({"delivery": delivery_out(result.delivery)}, status=202 if result.created else 200)


class CallbackApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "messages:write"}
    required_perms = {"POST": "campaigns.change_delivery"}

    @extend_schema(
        request=CallbackBatchIn,
        responses={200: dict, **error_responses(400, 422)},
        summary="Delivery results (delivered, opened, clicked, responded, failed); idempotent",
    )
    def post(self, request):
        batch = validate_batch(request.data, CallbackRow, unique_field=None)
        return Response(results.callbacks_record(batch=batch).as_dict())
