"""The API's JSON renderer: an answer never fails to encode.

A refusal may quote what the client sent — an unknown key, a field path — and a
client can send an unpaired surrogate (``"\\udc00"`` is valid JSON text). Python
holds it as a lone surrogate, which UTF-8 cannot encode, so rendering such an
answer raised ``UnicodeEncodeError`` (a 500 in place of the 400). Such text is
rendered with U+FFFD REPLACEMENT CHARACTER in its place; everything else exactly
as DRF renders it."""

import re

from rest_framework.renderers import JSONRenderer

_SURROGATE = re.compile("[\ud800-\udfff]")


def _replaced(value):
    """``value`` with every unpaired surrogate in its strings and keys replaced.
    Recursive: an answer is shallow, and the parser bounds what it echoes to 64 levels."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replaced(k): _replaced(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replaced(v) for v in value]
    return value


class SafeJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return super().render(_replaced(data), accepted_media_type, renderer_context)
