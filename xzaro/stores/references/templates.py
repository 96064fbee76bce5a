"""Kerchunk version 1 templates and ``gen`` entries, evaluated safely and within bounds.

``{{name}}`` in target URLs is replaced by the template of that name; ``gen`` entries are
expanded over the product of their dimensions. Template expressions are evaluated by a small
safe evaluator (names, numbers, strings, arithmetic and calls of templates with keyword
arguments), never by a template engine that could run code.

Bounds (going past one raises :class:`~xzaro.errors.MetadataError` naming the URL and the
field): the templates together build at most ``max_reference_bytes`` characters; ``gen``
entries stand for at most :data:`MAX_GEN_REFERENCES` references in all, counted from the sizes
of their dimensions before any is expanded; one rendered text is at most
:data:`MAX_RENDERED_TEXT` characters, templates nest at most :data:`MAX_TEMPLATE_NESTING` deep,
and each template is rendered once per value of the variables it uses; an expression is at most
:data:`MAX_EXPRESSION_LENGTH` characters and :data:`MAX_EXPRESSION_DEPTH` levels deep.
"""

from __future__ import annotations

import ast
import itertools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from xzaro.errors import MetadataError

#: The references all ``gen`` entries of one document may stand for, in all. Each costs about
#: 200-300 bytes of memory once expanded, so the limit is a few GiB.
MAX_GEN_REFERENCES = 10_000_000
#: The longest text one template, expression or ``gen`` field may render to (target URLs and
#: keys are far shorter).
MAX_RENDERED_TEXT = 65536
#: How deep templates may use other templates.
MAX_TEMPLATE_NESTING = 16
#: The longest template expression (the text between ``{{`` and ``}}``).
MAX_EXPRESSION_LENGTH = 4096
#: The deepest expression tree (``((1))`` is three levels: two groups do not count, ``-1`` two).
MAX_EXPRESSION_DEPTH = 64
#: Rendered templates memoised at once, in characters; the memo starts afresh beyond it.
_MEMO_CHARS = 64 * 2**20
#: Texts kept split into literals and expressions at once.
_SPLIT_TEXTS = 4096
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
#: Values a template variable may hold (bool is excluded: ``True`` would render as ``"True"``).
_SCALARS = (int, float, str)


def shown(text: str, limit: int = 80) -> str:
    """``repr(text)``, shortened for a message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


def _is_scalar(value: Any) -> bool:
    return type(value) in _SCALARS


def _expressions(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, expression)`` of every ``{{ expression }}`` in ``text``, in linear time.

    Text after a ``{{`` without a closing ``}}`` is literal.
    """
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            return
        stop = text.find("}}", start + 2)
        if stop < 0:
            return
        yield start, stop + 2, text[start + 2 : stop]
        pos = stop + 2


def _memo_token(value: Any) -> tuple[type, Any]:
    # 1, 1.0 and True compare equal but render differently; repr tells -0.0 and nan apart
    return type(value), (repr(value) if isinstance(value, float) else value)


class Templates:
    """Renders ``{{ expression }}`` text with the reference document's templates.

    Parameters
    ----------
    templates
        The document's ``templates`` object (``name -> text``); a template containing
        ``{{...}}`` is rendered with the variables in scope where it is used, or with the
        keyword arguments it is called with (``{{f(c='x')}}``).
    url
        The reference URL, for messages.
    max_chars
        The characters all renders of the document may build together.
    """

    def __init__(self, templates: Mapping[str, Any], url: str, max_chars: int) -> None:
        self.url = url
        self.templates: dict[str, str] = {}
        for name, text in templates.items():
            if not _is_scalar(text):
                raise self._error(f"template {name!r} must be text, got {type(text).__name__}")
            self.templates[str(name)] = str(text)
        self.max_chars = max_chars
        self._left = max_chars
        self._parsed: dict[str, ast.expr] = {}
        self._split: dict[str, tuple[list[str], list[str]]] = {}
        self._uses: dict[str, frozenset[str]] = {}
        self._memo: dict[tuple[Any, ...], str] = {}
        self._memo_chars = 0

    def render(self, text: str, scope: Mapping[str, Any] | None = None, _depth: int = 0) -> str:
        """``text`` with every ``{{ expression }}`` replaced by its value."""
        if "{{" not in text:
            return text
        split = self._split.get(text)
        if split is None:
            split = self._split_text(text)
        literals, expressions = split
        if not expressions:  # an unclosed "{{": literal text
            return text
        scope = scope or {}
        if len(expressions) == 1 and not literals[0] and not literals[1]:
            # "{{x}}" alone is the value itself: nothing new is built
            value = self.evaluate(expressions[0], scope, _depth)
            return value if isinstance(value, str) else self._text(value, expressions[0])
        pieces = [literals[0]]
        total = len(literals[0])
        for expression, literal in zip(expressions, literals[1:]):
            value = self.evaluate(expression, scope, _depth)
            piece = value if isinstance(value, str) else self._text(value, expression)
            pieces += [piece, literal]
            total += len(piece) + len(literal)
            if total > MAX_RENDERED_TEXT:
                raise self._error(
                    f"{shown(text)} renders to more than {MAX_RENDERED_TEXT} characters"
                )
        self._spend(total)
        return "".join(pieces)

    def evaluate(self, expression: str, scope: Mapping[str, Any], depth: int = 0) -> Any:
        """The value of one template expression."""
        tree = self._parse(expression)
        try:
            return self._eval(tree, scope, depth, expression)
        except (RecursionError, MemoryError) as exc:
            raise self._error(f"template expression {shown(expression)} is too complex") from exc

    # --- internals -----------------------------------------------------------------------

    def _split_text(self, text: str) -> tuple[list[str], list[str]]:
        """``(literals, expressions)`` of ``text``: literal, expression, literal, ...; kept for
        texts used again (templates and ``gen`` fields), up to :data:`_SPLIT_TEXTS` of them."""
        literals, expressions = [], []
        pos = 0
        for start, stop, expression in _expressions(text):
            literals.append(text[pos:start])
            expressions.append(expression)
            pos = stop
        literals.append(text[pos:])
        if len(self._split) >= _SPLIT_TEXTS:
            self._split.clear()
        self._split[text] = (literals, expressions)
        return literals, expressions

    def _parse(self, expression: str) -> ast.expr:
        tree = self._parsed.get(expression)
        if tree is not None:
            return tree
        if len(expression) > MAX_EXPRESSION_LENGTH:
            raise self._error(
                f"template expression {shown(expression)} is longer than "
                f"{MAX_EXPRESSION_LENGTH} characters"
            )
        try:
            tree = ast.parse(expression.strip(), mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise self._error(f"unsupported template expression {shown(expression)}") from exc
        stack: list[tuple[ast.AST, int]] = [(tree, 1)]
        while stack:
            node, level = stack.pop()
            if level > MAX_EXPRESSION_DEPTH:
                raise self._error(
                    f"template expression {shown(expression)} nests deeper than "
                    f"{MAX_EXPRESSION_DEPTH} levels"
                )
            stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
        self._parsed[expression] = tree
        return tree

    def _uses_names(self, name: str) -> frozenset[str]:
        """Every name the template ``name`` mentions, directly or through other templates."""
        found = self._uses.get(name)
        if found is not None:
            return found
        names: set[str] = set()
        seen, todo = {name}, [name]
        while todo:
            for _, _, expression in _expressions(self.templates[todo.pop()]):
                for node in ast.walk(self._parse(expression)):
                    if isinstance(node, ast.Name) and node.id not in names:
                        names.add(node.id)
                        if node.id in self.templates and node.id not in seen:
                            seen.add(node.id)
                            todo.append(node.id)
        self._uses[name] = frozenset(names)
        return self._uses[name]

    def _template(self, name: str, scope: Mapping[str, Any], depth: int) -> str:
        """Template ``name`` rendered in ``scope``: once per value of the names it uses."""
        if depth > MAX_TEMPLATE_NESTING:
            raise self._error(
                f"templates nest deeper than {MAX_TEMPLATE_NESTING} levels at {name!r}"
            )
        key = (name, *((n, _memo_token(scope[n])) for n in self._uses_names(name) if n in scope))
        text = self._memo.get(key)
        if text is None:
            text = self.render(self.templates[name], scope, depth)
            if self._memo_chars + len(text) > _MEMO_CHARS:
                self._memo.clear()
                self._memo_chars = 0
            self._memo[key] = text
            self._memo_chars += len(text)
        return text

    def _eval(self, node: ast.AST, scope: Mapping[str, Any], depth: int, source: str) -> Any:
        if isinstance(node, ast.Constant) and _is_scalar(node.value):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in scope:
                return scope[node.id]
            if node.id in self.templates:
                return self._template(node.id, scope, depth + 1)
            raise self._error(
                f"template expression {shown(source)} names an undefined {shown(node.id)}"
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self._eval(node.operand, scope, depth, source)
            if type(value) not in (int, float):
                raise self._error(f"cannot negate a non-number in {shown(source)}")
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left = self._eval(node.left, scope, depth, source)
            right = self._eval(node.right, scope, depth, source)
            return self._binop(node.op, left, right, source)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in self.templates
            and not node.args
            and all(k.arg is not None for k in node.keywords)
        ):
            kwargs = {str(k.arg): self._eval(k.value, scope, depth, source) for k in node.keywords}
            return self._template(node.func.id, {**scope, **kwargs}, depth + 1)
        raise self._error(f"unsupported template expression {shown(source)}")

    def _binop(self, op: ast.operator, left: Any, right: Any, source: str) -> Any:
        texts = [v for v in (left, right) if isinstance(v, str)]
        if texts and isinstance(op, ast.Mult):
            count = right if isinstance(left, str) else left
            if type(count) is not int or len(texts[0]) * max(count, 0) > MAX_RENDERED_TEXT:
                raise self._error(f"string repetition out of bounds in {shown(source)}")
        elif texts and not isinstance(op, ast.Add):
            # "%" on text would be printf-style formatting, able to build any amount of text
            raise self._error(f"only + and * apply to text in {shown(source)}")
        elif len(texts) == 2 and len(left) + len(right) > MAX_RENDERED_TEXT:
            raise self._error(f"template expression {shown(source)} makes too long a text")
        try:
            value = _BINOPS[type(op)](left, right)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise self._error(f"cannot evaluate {shown(source)}: {exc}") from exc
        if isinstance(value, str):
            self._spend(len(value))
        return value

    def _text(self, value: Any, source: str) -> str:
        try:
            return str(value)
        except ValueError as exc:  # an integer too long to convert
            raise self._error(f"cannot render {shown(source)}: {exc}") from exc

    def _spend(self, chars: int) -> None:
        self._left -= chars
        if self._left < 0:
            raise self._error(
                f"templates render more than {self.max_chars} characters in all "
                "(the max_reference_bytes ceiling)"
            )

    def _error(self, message: str) -> MetadataError:
        return MetadataError(message, url=self.url, field="templates")


def _gen_dimension(spec: Any, name: str, url: str, field: str) -> Sequence[Any]:
    """The values of one ``gen`` dimension: a list of scalars or ``{start, stop, step}``."""
    if isinstance(spec, list):
        bad = next((v for v in spec if not _is_scalar(v)), None)
        if bad is not None:
            raise MetadataError(
                f"gen dimension {name!r} holds {bad!r}; values must be numbers or text",
                url=url,
                field=field,
            )
        return spec
    if isinstance(spec, dict) and "stop" in spec and set(spec) <= {"start", "stop", "step"}:
        bounds = [spec.get("start", 0), spec["stop"], spec.get("step", 1)]
        if all(type(v) is int for v in bounds) and bounds[2] != 0:
            return range(*bounds)
        raise MetadataError(
            f"gen dimension {name!r}: start, stop and step must be integers (step not 0), "
            f"got {spec!r}",
            url=url,
            field=field,
        )
    raise MetadataError(
        f"gen dimension {name!r} must be a list or {{start, stop, step}}, got {spec!r}",
        url=url,
        field=field,
    )


def _gen_size(axes: Sequence[Sequence[Any]], url: str, field: str, before: int) -> int:
    """The references a ``gen`` entry stands for, refused beyond :data:`MAX_GEN_REFERENCES`
    (with ``before`` references already counted) without expanding anything."""
    count = 1
    for axis in axes:
        try:
            count *= len(axis)
        except OverflowError:  # a range longer than sys.maxsize
            count = MAX_GEN_REFERENCES + 1
        if count == 0:
            return 0
        if before + count > MAX_GEN_REFERENCES:
            raise MetadataError(
                f"{field} stands for more than MAX_GEN_REFERENCES={MAX_GEN_REFERENCES} "
                f"references{' with the entries before it' if before else ''}",
                url=url,
                field=field,
            )
    return count


def _gen_template(gen: dict[str, Any], name: str, url: str, field: str) -> str:
    text = gen[name]
    if isinstance(text, str) or (name in ("offset", "length") and type(text) is int):
        return str(text)
    raise MetadataError(
        f"{field}.{name} must be a template text, got {text!r}", url=url, field=field
    )


def _gen_integer(
    templates: Templates, text: str, scope: Mapping[str, Any], url: str, field: str, name: str
) -> int:
    rendered = templates.render(text, scope)
    try:
        value = int(rendered)
    except (TypeError, ValueError) as exc:
        raise MetadataError(
            f"{field}.{name} must render as an integer, got {shown(str(rendered))}",
            url=url,
            field=field,
        ) from exc
    if not 0 <= value < 2**63:
        raise MetadataError(
            f"{field}.{name} renders as {value}, outside 0 to 2**63 - 1", url=url, field=field
        )
    return value


def expand_gen(gens: Any, templates: Templates, url: str) -> dict[str, Any]:
    """The references that the ``gen`` entries of a version 1 document stand for.

    Each entry has ``key`` and ``url`` templates, optional ``offset`` and ``length`` templates
    (both or neither) and ``dimensions`` (name to a list of values or ``{start, stop, step}``);
    one reference is made per element of the product of the dimensions (last one fastest).
    The sizes of all entries are checked against :data:`MAX_GEN_REFERENCES` before any entry
    is expanded, and entries are expanded one at a time.

    Parameters
    ----------
    gens
        The document's ``gen`` list.
    templates
        The document's templates.
    url
        The reference URL, for messages.

    Returns
    -------
    dict
        ``{key: [url]}`` or ``{key: [url, offset, length]}``.

    Raises
    ------
    MetadataError
        An entry is malformed, the entries stand for too many references, or a rendered field
        is invalid; the field is named ``gen[<n>]``.
    """
    if not isinstance(gens, list):
        raise MetadataError("gen must be a list", url=url, field="gen")
    plans = []
    total = 0
    for n, gen in enumerate(gens):
        field = f"gen[{n}]"
        if not isinstance(gen, dict) or "key" not in gen or "url" not in gen:
            raise MetadataError(f"{field} needs 'key' and 'url'", url=url, field=field)
        if ("offset" in gen) != ("length" in gen):
            raise MetadataError(
                f"{field} needs both 'offset' and 'length', or neither", url=url, field=field
            )
        dims = gen.get("dimensions") or {}
        if not isinstance(dims, dict):
            raise MetadataError(f"{field}.dimensions must be an object", url=url, field=field)
        names = [str(name) for name in dims]
        axes = [_gen_dimension(spec, str(name), url, field) for name, spec in dims.items()]
        total += _gen_size(axes, url, field, total)
        texts = {
            k: _gen_template(gen, k, url, field)
            for k in ("key", "url", "offset", "length")
            if k in gen
        }
        plans.append((field, names, axes, texts))
    out: dict[str, Any] = {}
    for field, names, axes, texts in plans:
        for values in itertools.product(*axes):
            scope = dict(zip(names, values))
            key = templates.render(texts["key"], scope)
            target = templates.render(texts["url"], scope)
            if "offset" in texts:
                offset = _gen_integer(templates, texts["offset"], scope, url, field, "offset")
                length = _gen_integer(templates, texts["length"], scope, url, field, "length")
                out[key] = [target, offset, length]
            else:
                out[key] = [target]
    return out
