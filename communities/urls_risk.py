"""The risk pages (stub: filled in by the risk work)."""

urlpatterns = []
