"""REST API v1 for campaigns: one message now (``messages:write``), delivery results
(``messages:write``) and, in ``api_campaigns``, campaigns for automation."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.batch import validate_batch
from core.permissions import ScopePermission
from core.schema import error_responses
from core.validation import validate_body

from . import selectors
from .rows import CallbackBatchIn, CallbackRow, CampaignIn, MessageIn, MessageOut
from .services import campaigns as campaign_services
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


def campaign_out(campaign) -> dict:
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "channel": campaign.channel,
        "category": campaign.category,
        "segments": campaign.segments,
        "excluded_segments": campaign.excluded_segments,
        "schedule": campaign.schedule,
        "start_at": campaign.start_at.isoformat() if campaign.start_at else None,
        "cron": campaign.cron,
        "timezone": campaign.schedule_timezone,
        "trigger": campaign.trigger,
        "trigger_value": campaign.trigger_value,
        "variants": [
            {"code": v.code, "share": v.share, "template": v.template.code, "subject": v.subject}
            for v in campaign.variants.select_related("template").order_by("code")
        ],
        "deliveries": selectors.campaign_status_counts(campaign=campaign),
        "results": selectors.campaign_results(campaign=campaign),
    }


class _CampaignApi(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": "campaigns:write", "POST": "campaigns:write"}
    required_perms = {"GET": "campaigns.view_campaign", "POST": "campaigns.change_campaign"}


class CampaignCreateApi(_CampaignApi):
    required_perms = {"POST": "campaigns.add_campaign"}

    @extend_schema(
        request=CampaignIn,
        responses={201: dict, **error_responses(400, 422)},
        summary="Create a campaign (a draft; launch it to schedule it)",
    )
    def post(self, request):
        body = validate_body(CampaignIn, request.data)
        data = body.model_dump(exclude={"variants", "timezone"})
        data["schedule_timezone"] = body.timezone
        variants = [
            campaign_services.VariantSpec(v.code, v.share, v.template, v.subject, v.fields) for v in body.variants
        ]
        campaign = campaign_services.campaign_create(data=data, variants=variants, actor=request.user)
        return Response(campaign_out(campaign), status=201)


class CampaignApi(_CampaignApi):
    @extend_schema(
        responses={200: dict, **error_responses(404)},
        summary="A campaign: status, deliveries by status and reason, results per variant",
    )
    def get(self, request, campaign_id: int):
        return Response(campaign_out(campaign_services.campaign_get(campaign_id=campaign_id)))


class CampaignLaunchApi(_CampaignApi):
    @extend_schema(request=None, responses={200: dict, **error_responses(404, 409, 422)}, summary="Launch a campaign")
    def post(self, request, campaign_id: int):
        campaign = campaign_services.campaign_get(campaign_id=campaign_id)
        return Response(campaign_out(campaign_services.campaign_launch(campaign=campaign, actor=request.user)))


class CampaignPauseApi(_CampaignApi):
    @extend_schema(request=None, responses={200: dict, **error_responses(404, 409)}, summary="Pause a campaign")
    def post(self, request, campaign_id: int):
        campaign = campaign_services.campaign_get(campaign_id=campaign_id)
        return Response(campaign_out(campaign_services.campaign_pause(campaign=campaign, actor=request.user)))
