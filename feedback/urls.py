from django.urls import path

from . import views

app_name = "feedback"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("new", views.ticket_new, name="new"),
    path("bulk-assign", views.bulk_assign, name="bulk-assign"),
    path("attachments/<int:attachment_id>", views.attachment_download, name="attachment"),
    path("<int:ticket_id>/", views.ticket_detail, name="ticket"),
    path("<int:ticket_id>/reply", views.ticket_reply, name="reply"),
    path("<int:ticket_id>/note", views.ticket_note, name="note"),
    path("<int:ticket_id>/transition", views.ticket_transition, name="transition"),
    path("<int:ticket_id>/assign", views.ticket_assign, name="assign"),
    path("<int:ticket_id>/update", views.ticket_update, name="update"),
    path("<int:ticket_id>/merge", views.ticket_merge, name="merge"),
    path("<int:ticket_id>/canned/<int:reply_id>", views.canned_render, name="canned"),
    # An approved SOP template (the select's value "sop-<id>" replaces the 0 of the URL above).
    path("<int:ticket_id>/canned/sop-<int:template_id>", views.canned_sop_render, name="canned-sop"),
]
