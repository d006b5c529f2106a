"""SOP template bodies: what a body may say, checked when a version is saved, and how
it is rendered. Pure functions, no database: the services check with ``body_check``
before writing, the selectors render with ``body_render``.

The language is a small, sandboxed subset of Jinja2
(``jinja2.sandbox.ImmutableSandboxedEnvironment``, ``undefined=StrictUndefined``, no
loader, no globals, no extensions):

- ``{{ name }}`` prints one of the fixed ``VARIABLES`` (the system fills them in) or
  one of the version's declared ``fields`` (the operator fills them in);
- ``{% if %}`` / ``{% elif %}`` / ``{% else %}`` with comparisons, ``and``/``or``/``not``,
  ``~`` (join text), literal strings and numbers, ``{% raw %}`` and ``{# comments #}``;
- the filters in ``FILTERS`` (``{{ nickname|default("朋友", true) }}``).

Everything else is refused at save, with the line it is on: attribute and item access
(``{{ nickname.__class__ }}``, ``{{ x['y'] }}``) — the sandbox would stop most of it at
render time, but a template must not even try to reach past its variables; calls
(``{{ range(10) }}``, ``{{ lipsum() }}``); any other filter (``|attr``, ``|safe``,
``|format``…) or test; loops, ``{% set %}``, macros, blocks, ``{% include %}``,
``{% extends %}``, ``{% import %}`` and ``{% autoescape false %}``; arithmetic (``'x' * 10**9``
would be a memory bomb); list and dict literals. A name that is neither a variable nor a
declared field is refused (``jinja2.meta.find_undeclared_variables``), and so is a
declared field the body never uses (an operator would be asked for nothing).

Output is HTML-escaped by default (``autoescape=True``): a customer whose nickname is
``<script>`` gets ``&lt;script&gt;``. A plain-text destination whose text is escaped
again where it is shown (the feedback reply box, stored as text and escaped on display)
asks for ``output=TEXT`` so a nickname ``A&B`` is not sent as ``A&amp;B``; the check
and the context are the same."""

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.errors import ApplicationError

HTML = "html"
TEXT = "text"

#: The fixed context the system fills in, name → what it holds (shown to writers).
VARIABLES: dict[str, object] = {
    "nickname": gettext_lazy("the customer's nickname (their name, or their id, when they have none)"),
    "group": gettext_lazy("the community group's name"),
    "points": gettext_lazy("the customer's spendable points balance"),
    "level": gettext_lazy("the customer's membership level"),
    "operator": gettext_lazy("the operator's name"),
    "today": gettext_lazy("today's date (YYYY-MM-DD, in the customer's timezone)"),
    "ticket": gettext_lazy("the ticket number (in ticket replies; empty elsewhere)"),
    "subject": gettext_lazy("the ticket's subject (in ticket replies; empty elsewhere)"),
}

#: Field types an operator fills in, type → label.
FIELD_TYPES: dict[str, object] = {
    "text": gettext_lazy("text"),
    "number": pgettext_lazy("sop template", "number"),
    "date": pgettext_lazy("sop template", "date (YYYY-MM-DD)"),
    "order_number": pgettext_lazy("sop template", "order number"),
}

#: Filters a body may use; none of them grows its input beyond the body's own literals.
FILTERS = ("default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate")

BODY_MAX = 10_000
FIELDS_MAX = 20
LABEL_MAX = 80
TEXT_VALUE_MAX = 500
NUMBER_MAX_DIGITS = 15
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ORDER_NUMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
# Jinja's own words and the names its runtime gives meaning to.
RESERVED = frozenset(
    {"true", "false", "none", "and", "or", "not", "in", "is", "if", "else", "elif", "endif", "loop", "self"}
    | {"super", "varargs", "kwargs", "caller", "true_", "false_", "none_", "range", "dict", "namespace"}
)
FIELD_KEYS = {"name", "label", "type", "required"}

# Node types a body may contain; everything else (Getattr, Getitem, Call, For, Assign,
# Macro, Include, Extends, Import, ScopedEvalContextModifier, BinExpr, List, Dict…) is refused.
_ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.If,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Concat,
    nodes.Filter,
    nodes.Keyword,
)

_NODE_WORDS = {
    nodes.Getattr: gettext_lazy("attribute access (x.y)"),
    nodes.Getitem: gettext_lazy("item access (x[y])"),
    nodes.Call: gettext_lazy("a call (f())"),
    nodes.For: gettext_lazy("a loop ({% for %})"),
    nodes.Assign: gettext_lazy("an assignment ({% set %})"),
    nodes.AssignBlock: gettext_lazy("an assignment ({% set %})"),
    nodes.Macro: pgettext_lazy("sop template", "a macro"),
    nodes.CallBlock: gettext_lazy("a call block"),
    nodes.Include: pgettext_lazy("sop template", "an include"),
    nodes.Extends: pgettext_lazy("sop template", "extends"),
    nodes.Import: pgettext_lazy("sop template", "an import"),
    nodes.FromImport: pgettext_lazy("sop template", "an import"),
    nodes.Block: pgettext_lazy("sop template", "a block"),
    nodes.ScopedEvalContextModifier: gettext_lazy("{% autoescape %}"),
    nodes.Scope: gettext_lazy("{% autoescape %}"),
    nodes.With: gettext_lazy("{% with %}"),
    nodes.Test: gettext_lazy("a test (is …)"),
    nodes.FilterBlock: gettext_lazy("a filter block"),
    nodes.List: gettext_lazy("a list or dict literal"),
    nodes.Tuple: gettext_lazy("a list or dict literal"),
    nodes.Dict: gettext_lazy("a list or dict literal"),
    nodes.BinExpr: pgettext_lazy("sop template", "arithmetic"),
    nodes.UnaryExpr: pgettext_lazy("sop template", "arithmetic"),
}


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined, loader=None)
    env.globals.clear()
    env.filters = {name: JINJA_FILTERS[name] for name in FILTERS}
    env.tests = {}
    return env


_ENVIRONMENTS = {HTML: _environment(autoescape=True), TEXT: _environment(autoescape=False)}


def _invalid(code: str, message: str, **details) -> ApplicationError:
    return ApplicationError(message, code=code, details=details)


# --- fields -------------------------------------------------------------------------


def fields_check(fields) -> list[dict]:
    """The declared fields, cleaned: ``[{"name", "label", "type", "required"}]``. Refuses
    (``invalid_fields``) a bad name, an unknown type, a duplicate, a name taken by a
    variable or by Jinja, a missing label, unknown keys."""
    if fields in (None, ""):
        return []
    if not isinstance(fields, list):
        raise _invalid("invalid_fields", _("The fields must be a list."), fields=["list"])
    if len(fields) > FIELDS_MAX:
        raise _invalid("invalid_fields", _("At most %(n)s fields.") % {"n": FIELDS_MAX}, fields=["too many"])
    cleaned, seen = [], set()
    for index, raw in enumerate(fields, start=1):
        field = _field_check(index, raw)
        if field["name"] in seen:
            raise _invalid("invalid_fields", _("The field “%(name)s” is declared twice.") % field, field=field["name"])
        seen.add(field["name"])
        cleaned.append(field)
    return cleaned


def _field_check(index: int, raw) -> dict:
    where = _("Field %(n)s") % {"n": index}
    if not isinstance(raw, dict):
        raise _invalid("invalid_fields", _("%(where)s is not an object.") % {"where": where}, field=index)
    unknown = set(raw) - FIELD_KEYS
    if unknown:
        raise _invalid(
            "invalid_fields",
            _("%(where)s has unknown keys: %(keys)s.") % {"where": where, "keys": ", ".join(sorted(unknown))},
            field=index,
        )
    name = raw.get("name")
    if not isinstance(name, str) or not FIELD_NAME_RE.match(name) or name in RESERVED:
        raise _invalid(
            "invalid_fields",
            _("%(where)s: “%(name)s” is not a field name (a–z, 0–9 and _, starting with a letter).")
            % {"where": where, "name": name},
            field=index,
        )
    if name in VARIABLES:
        raise _invalid(
            "invalid_fields",
            _("The field “%(name)s” has the name of a variable the system fills in; choose another.") % {"name": name},
            field=name,
        )
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip() or len(label.strip()) > LABEL_MAX:
        raise _invalid(
            "invalid_fields",
            _("The field “%(name)s” needs a label of at most %(n)s characters.") % {"name": name, "n": LABEL_MAX},
            field=name,
        )
    kind = raw.get("type", "text")
    if kind not in FIELD_TYPES:
        raise _invalid(
            "invalid_fields",
            _("The field “%(name)s” has an unknown type “%(type)s”; one of %(types)s.")
            % {"name": name, "type": kind, "types": ", ".join(FIELD_TYPES)},
            field=name,
        )
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise _invalid(
            "invalid_fields",
            _("The field “%(name)s”: required is true or false.") % {"name": name},
            field=name,
        )
    return {"name": name, "label": label.strip(), "type": kind, "required": required}


def _field_value(field: dict, raw) -> str:
    """One filled-in value, checked by its type (raises ValueError with the reason)."""
    value = "" if raw is None else str(raw).strip()
    kind = field["type"]
    if kind == "text":
        if len(value) > TEXT_VALUE_MAX:
            raise ValueError(_("At most %(n)s characters.") % {"n": TEXT_VALUE_MAX})
        return value
    if kind == "number":
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(_("“%(value)s” is not a number.") % {"value": value}) from None
        if not number.is_finite() or len(number.as_tuple().digits) > NUMBER_MAX_DIGITS:
            raise ValueError(_("“%(value)s” is not a number.") % {"value": value})
        return format(number.normalize(), "f") if number != number.to_integral() else str(int(number))
    if kind == "date":
        try:
            if not DATE_RE.match(value):
                raise ValueError(value)
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(_("“%(value)s” is not a date (YYYY-MM-DD).") % {"value": value}) from None
    if not ORDER_NUMBER_RE.match(value):
        raise ValueError(_("“%(value)s” is not an order number (3 to 64 letters, digits, - and _).") % {"value": value})
    return value


def fields_clean(fields: list[dict], values: dict | None) -> dict[str, str]:
    """The operator's values for the declared ``fields``, checked by type. Refuses
    (``invalid_fields``, ``details`` = ``{name: [reason]}``) a missing required value, a
    value of the wrong type, or a value for a field that is not declared. An optional
    field left empty is an empty string."""
    values = dict(values or {})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}
    for field in fields:
        name, raw = field["name"], values.pop(field["name"], None)
        if raw is None or str(raw).strip() == "":
            if field["required"]:
                errors[name] = [_("%(label)s is required.") % {"label": field["label"]}]
            cleaned[name] = ""
            continue
        try:
            cleaned[name] = _field_value(field, raw)
        except ValueError as exc:
            errors[name] = [f"{field['label']}: {exc}"]
    for name in sorted(values):
        errors[name] = [_("No field “%(name)s” is declared.") % {"name": name}]
    if errors:
        first = next(iter(errors.values()))[0]
        raise ApplicationError(first, code="invalid_fields", details=errors)
    return cleaned


# --- the body -----------------------------------------------------------------------


def _forbidden(node: nodes.Node) -> str:
    for kind, words in _NODE_WORDS.items():
        if isinstance(node, kind):
            return str(words)
    return _("the construct “%(name)s”") % {"name": type(node).__name__}


def _line(node: nodes.Node) -> int:
    """The node's line (a ``Scope`` Jinja adds has none of its own: its first child's)."""
    found = getattr(node, "lineno", None)
    if found:
        return found
    return next((_line(child) for child in node.iter_child_nodes()), 1)


def _walk(node: nodes.Node) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        line = _line(node)
        raise _invalid(
            "template_forbidden",
            _("Line %(line)s: %(what)s is not allowed in a template; use the variables and fields as they are.")
            % {"line": line, "what": _forbidden(node)},
            line=line,
        )
    if isinstance(node, nodes.Filter) and node.name not in FILTERS:
        raise _invalid(
            "template_forbidden",
            _("Line %(line)s: the filter “%(name)s” is not allowed; allowed: %(allowed)s.")
            % {"line": node.lineno, "name": node.name, "allowed": ", ".join(FILTERS)},
            line=node.lineno,
            filter=node.name,
        )
    if isinstance(node, nodes.Filter) and (node.dyn_args is not None or node.dyn_kwargs is not None):
        raise _invalid(
            "template_forbidden", _("Line %(line)s: *args are not allowed.") % {"line": node.lineno}, line=node.lineno
        )
    for child in node.iter_child_nodes():
        _walk(child)


def body_check(body: str, fields: list[dict]) -> list[str]:
    """Checks ``body`` against the fixed variables and the (already checked) ``fields``;
    returns the variables it uses, sorted. Raises ``ApplicationError``:
    ``template_empty``, ``template_too_long``, ``template_syntax``, ``template_forbidden``,
    ``template_unknown_variable`` or ``unused_field``."""
    if not isinstance(body, str) or not body.strip():
        raise _invalid("template_empty", _("The template has no text."), body=["empty"])
    if len(body) > BODY_MAX:
        raise _invalid(
            "template_too_long", _("The template is longer than %(n)s characters.") % {"n": BODY_MAX}, body=["long"]
        )
    env = _ENVIRONMENTS[HTML]
    try:
        tree = env.parse(body)
        _walk(tree)
        names = meta.find_undeclared_variables(tree)
    except TemplateSyntaxError as exc:
        raise _invalid(
            "template_syntax",
            _("Line %(line)s: the template does not parse: %(problem)s") % {"line": exc.lineno, "problem": exc.message},
            line=exc.lineno,
        ) from None
    except RecursionError:
        raise _invalid("template_syntax", _("The template is nested too deeply."), line=None) from None
    except (ValueError, OverflowError):
        # Jinja's lexer turns a number literal into an int: 5,000 digits exceed Python's limit.
        raise _invalid("template_syntax", _("The template has a number too long to read."), line=None) from None
    field_names = {f["name"] for f in fields}
    # ``find_undeclared_variables`` leaves out the names Jinja fills in itself (``self``
    # prints the template object): every name must be a variable or a declared field.
    names |= {node.name for node in tree.find_all(nodes.Name)}
    unknown = sorted(names - set(VARIABLES) - field_names)
    if unknown:
        raise _invalid(
            "template_unknown_variable",
            _("Unknown variable(s): %(unknown)s. Variables: %(known)s; declared fields: %(fields)s.")
            % {
                "unknown": ", ".join(unknown),
                "known": ", ".join(VARIABLES),
                "fields": ", ".join(sorted(field_names)) or "—",
            },
            unknown=unknown,
        )
    unused = sorted(field_names - names)
    if unused:
        raise _invalid(
            "unused_field",
            _("Declared but never used in the text: %(unused)s.") % {"unused": ", ".join(unused)},
            unused=unused,
        )
    _truncate_check(tree)
    _trial_render(body, fields)
    return sorted(names & set(VARIABLES))


def _truncate_check(tree: nodes.Template) -> None:
    """``truncate`` needs a length of at least its ``end`` text ("..." unless given):
    Jinja asserts it when rendering, so a body that asks for less is refused here, even
    in a branch the trial render does not take."""
    for node in tree.find_all(nodes.Filter):
        if node.name != "truncate":
            continue
        given = dict(enumerate(node.args)) | {kw.key: kw.value for kw in node.kwargs}
        length, end = given.get(0, given.get("length")), given.get(2, given.get("end"))
        end_text = end.value if isinstance(end, nodes.Const) else "..." if end is None else None
        if (
            isinstance(length, nodes.Const)
            and isinstance(end_text, str)
            and (not isinstance(length.value, int | float) or length.value < len(end_text))
        ):
            raise _invalid(
                "template_forbidden",
                _("Line %(line)s: truncate needs a length of at least %(n)s (the length of its end text).")
                % {"line": node.lineno, "n": len(end_text)},
                line=node.lineno,
            )


#: what the trial render at save puts in each field type (a value the type accepts)
_TRIAL_FIELD_VALUES = {"text": "x", "number": "1", "date": "2026-01-01", "order_number": "SO-001"}


def _trial_render(body: str, fields: list[dict]) -> None:
    """Renders the body once with sample values, so a filter given the wrong arguments
    (``{{ nickname|upper(1) }}``) or a comparison of text with a number is refused when
    the version is saved, not when it is sent."""
    context: dict[str, object] = dict.fromkeys(VARIABLES, "x")
    context["points"] = 0
    context.update({f["name"]: _TRIAL_FIELD_VALUES.get(f["type"], "x") for f in fields})
    try:
        body_render(body, context, output=TEXT)
    except ApplicationError as exc:
        raise _invalid(
            "template_render_failed",
            _("The template cannot be filled in with sample values: %(problem)s") % {"problem": exc.details["problem"]},
        ) from None


@lru_cache(maxsize=256)
def _compiled(body: str, output: str):
    return _ENVIRONMENTS[output].from_string(body)


def body_render(body: str, context: dict, *, output: str = HTML) -> str:
    """``body`` (checked at save) rendered with ``context`` (the fixed variables and the
    cleaned field values; nothing else reaches it). ``output`` is ``HTML`` (escaped) or
    ``TEXT``. A failure is ``template_render_failed``, never a half-rendered text."""
    if output not in _ENVIRONMENTS:
        raise ValueError(output)
    try:
        return _compiled(body, output).render(context).strip()
    except (
        TemplateError,
        SecurityError,
        UndefinedError,
        TypeError,
        ValueError,
        RecursionError,
        ArithmeticError,
        LookupError,
        AssertionError,  # Jinja's filters assert their arguments (truncate's length)
    ) as exc:
        raise _invalid(
            "template_render_failed",
            _("The template cannot be filled in: %(problem)s") % {"problem": exc},
            problem=str(exc),
        ) from None
