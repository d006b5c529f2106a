"""The templates pages (stub: filled in by the templates work)."""

urlpatterns = []
