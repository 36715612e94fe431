"""Validate Gitea API traffic against the Swagger 2.0 document a real Gitea (1.26) serves.

The Gitea stand-in is only worth something if it cannot drift from the real API: a stand-in
that accepts a request the real server would reject lets a client bug through to production.
So every request the stand-in receives and every response it sends goes through this module,
which holds both to `/work/shared/gitea/swagger.v1.json` (see that directory's README).

Swagger 2.0 is not JSON Schema, and Gitea is a Go program, so the schemas are adapted:

* Draft 4 semantics (Swagger 2.0's base): `1.0` is not an integer, as Go's decoder agrees.
* Requests: Go decodes JSON `null` as "absent" for any field, so `null` is accepted on
  optional properties; on required ones it is a violation (Gitea's binding answers 422).
  Unknown properties are violations by default: Go would silently drop them, which is how a
  typo such as `lables` turns into an issue without labels in production.
* Responses: Go marshals nil pointers, slices and maps as `null`, so properties that are
  objects, arrays or `*time.Time` may be `null`. Properties the swagger does not list are
  violations: the stand-in must not invent fields a client could come to rely on.
* Error responses: go-swagger documents Gitea's `{"message", "url"}` error bodies as response
  *headers*; they are checked as bodies against `APIError`. Statuses a route does not declare
  but Gitea's middleware can answer anywhere (401, 403, 409, 422, 500, ...) must carry an
  `APIError` body; an undeclared 2xx/3xx is a violation.
* Lists that take `page`/`limit` must carry `X-Total-Count`, and `Link` must use Gitea's
  `<url>; rel="next"` format (the swagger does not describe these headers).
* Extensions: fields Gitea sends that its document omits (`username` on every user, from
  `User.MarshalJSON`) are added to the definitions, typed (see `gitea_models.EXTENSIONS`).
* Response bodies and webhook payload parts are also held to the strict models of
  `gitea-api-client` (`gitea_models`): types, enums, and with `strict_fields` every field
  the model and the document share (omitempty pointers aside).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from fleet.sandbox.forge import NO_BODY, compile_template
from fleettest.gitea_models import EXTENSIONS, model_problems, schema_problems

Mode = Literal["request", "response"]

API_BASE: Final = "/api/v1"
_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch")
_INT_RANGES: Final = {
    "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint64": (0, 2**64 - 1),
}
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")
_GO_BOOLS: Final = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
_LINK_PART: Final = re.compile(r'<([^<>]+)>; rel="(next|prev|first|last)"')
# go-swagger's quirk: these "responses" declare the error body's fields as headers.
_ERROR_HEADER_NAMES: Final = frozenset({"message", "url", "invalidTopics"})


class SwaggerNotFoundError(FileNotFoundError):
    """The swagger document is missing: validation is never silently skipped."""


def shared_dir() -> Path:
    """The directory holding `gitea/` and `crisis/`; `HERMES_SHARED_DIR` overrides it."""
    env = os.environ.get("HERMES_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared"


def default_swagger_path() -> Path:
    return shared_dir() / "gitea" / "swagger.v1.json"


@dataclass(frozen=True)
class Operation:
    """One swagger operation: an HTTP method on a path template (relative to basePath)."""

    method: str
    template: str
    spec: Mapping[str, Any]

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId", f"{self.method} {self.template}"))

    @property
    def parameters(self) -> list[Mapping[str, Any]]:
        return list(self.spec.get("parameters", []))

    def query_names(self) -> set[str]:
        return {str(p["name"]) for p in self.parameters if p.get("in") == "query"}


@dataclass(frozen=True)
class Match:
    template: str
    path_params: dict[str, str]
    operations: Mapping[str, Operation]

    def operation(self, method: str) -> Operation | None:
        return self.operations.get(method.upper())


@dataclass(frozen=True)
class _Template:
    template: str
    regex: re.Pattern[str]
    names: tuple[str, ...]
    literal_segments: int


def _format_checker() -> FormatChecker:
    """Formats Swagger 2.0 uses in Gitea's document, checked the way Go would parse them."""
    checker = FormatChecker(formats=())

    @checker.checks("date-time")
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.fullmatch(value):
            return False
        try:
            datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
        except ValueError:
            return False
        return True

    @checker.checks("date")
    def _date(value: object) -> bool:
        if not isinstance(value, str):
            return True
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
        return True

    @checker.checks("email")
    def _email(value: object) -> bool:
        return not isinstance(value, str) or value == "" or bool(_EMAIL.fullmatch(value))

    for fmt, (low, high) in _INT_RANGES.items():

        def _in_range(value: object, low: int = low, high: int = high) -> bool:
            if isinstance(value, bool) or not isinstance(value, int):
                return True
            return low <= value <= high

        checker.checks(fmt)(_in_range)
    return checker


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"anyOf": [{"type": "null"}, schema]}
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _nullable_in(prop: Mapping[str, Any], mode: Mode) -> bool:
    if prop.get("x-nullable"):
        return True
    if mode == "request":
        return True
    return (
        "$ref" in prop
        or prop.get("type") in ("array", "object")
        or prop.get("format") in ("date-time", "date")
    )


def _adapt(schema: Any, mode: Mode, strict: bool) -> Any:
    """Swagger 2.0 schema -> Draft 4 JSON Schema with Go's null and unknown-field rules."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-") or key in ("example", "title", "description", "readOnly"):
            continue
        if key == "properties":
            out[key] = {
                name: (
                    _nullable(_adapt(p, mode, strict))
                    if _nullable_in(p, mode)
                    else _adapt(p, mode, strict)
                )
                for name, p in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _adapt(value, mode, strict)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_adapt(s, mode, strict) for s in value]
        else:
            out[key] = value
    if (
        strict
        and out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


def _error_text(prefix: str, error: ValidationError) -> str:
    if error.context:
        deepest = best_match(error.context)
        if deepest is not None:
            error = deepest
    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    return f"{prefix}: {where}: {error.message}"


class SwaggerValidator:
    """Holds requests and responses to the paths, parameters and schemas of Gitea's swagger.

    Methods return a list of human-readable violations; an empty list means "valid".
    Paths may be given with or without the `/api/v1` base path.
    """

    def __init__(
        self,
        swagger_path: Path | None = None,
        *,
        strict_fields: bool = True,
        strict_models: bool = True,
    ) -> None:
        path = swagger_path or default_swagger_path()
        if not path.is_file():
            raise SwaggerNotFoundError(
                f"Gitea swagger document not found at {path}. Set HERMES_SHARED_DIR to the "
                "directory that holds gitea/swagger.v1.json; the stand-in refuses to run "
                "without it rather than skip validation."
            )
        self.path = path
        self.doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if self.doc.get("swagger") != "2.0":
            raise ValueError(f"{path} is not a Swagger 2.0 document")
        for name, extra in EXTENSIONS.items():  # what Gitea sends beyond its document
            self.doc["definitions"][name]["properties"].update(extra)
        self.base_path: str = str(self.doc.get("basePath", API_BASE)).rstrip("/")
        self.version: str = str(self.doc.get("info", {}).get("version", ""))
        self.strict_fields = strict_fields
        # Also hold bodies to gitea-api-client's strict models (see gitea_models); with
        # strict_fields, every field the model and the swagger share must be present.
        self.strict_models = strict_models
        self._formats = _format_checker()
        self._templates = self._compile_templates()
        self._definitions: dict[Mode, dict[str, Any]] = {}
        self._validators: dict[tuple[str, Mode], Draft4Validator] = {}
        self.security_query_names = {
            str(d["name"])
            for d in self.doc.get("securityDefinitions", {}).values()
            if d.get("in") == "query"
        }

    @classmethod
    def default(cls) -> SwaggerValidator:
        """A shared validator for the default document (parsing 850 kB once, not per test)."""
        return _default_validator(str(default_swagger_path()))

    # ---- paths -------------------------------------------------------------------------

    def _compile_templates(self) -> list[_Template]:
        templates = []
        for template in self.doc["paths"]:
            regex, names, literals = compile_template(template)
            templates.append(_Template(template, regex, names, literals))
        # A literal segment beats a parameter: /issues/comments/{id} before /issues/{index}/...
        templates.sort(key=lambda t: (-t.literal_segments, t.template))
        return templates

    def relative(self, path: str) -> str:
        if path == self.base_path or path.startswith(self.base_path + "/"):
            path = path[len(self.base_path) :]
        return path or "/"

    def match(self, path: str) -> Match | None:
        """The swagger path template that `path` instantiates, with its path parameters."""
        rel = self.relative(path)
        for tpl in self._templates:
            found = tpl.regex.fullmatch(rel)
            if found:
                spec = self.doc["paths"][tpl.template]
                ops = {
                    m.upper(): Operation(m.upper(), tpl.template, self._merged(spec, m))
                    for m in _METHODS
                    if m in spec
                }
                return Match(tpl.template, dict(zip(tpl.names, found.groups(), strict=True)), ops)
        return None

    @staticmethod
    def _merged(path_spec: Mapping[str, Any], method: str) -> dict[str, Any]:
        op = dict(path_spec[method])
        shared = list(path_spec.get("parameters", []))
        if shared:
            own = {(p.get("name"), p.get("in")) for p in op.get("parameters", [])}
            op["parameters"] = [
                *[p for p in shared if (p.get("name"), p.get("in")) not in own],
                *op.get("parameters", []),
            ]
        return op

    def operation(self, method: str, path: str) -> Operation | None:
        found = self.match(path)
        return found.operation(method) if found else None

    # ---- schemas -----------------------------------------------------------------------

    def _defs(self, mode: Mode) -> dict[str, Any]:
        if mode not in self._definitions:
            self._definitions[mode] = {
                name: _adapt(schema, mode, self.strict_fields)
                for name, schema in self.doc.get("definitions", {}).items()
            }
        return self._definitions[mode]

    def _validator(self, key: str, schema: Mapping[str, Any], mode: Mode) -> Draft4Validator:
        cached = self._validators.get((key, mode))
        if cached is None:
            root = {
                "definitions": self._defs(mode),
                "allOf": [_adapt(dict(schema), mode, self.strict_fields)],
            }
            cached = Draft4Validator(root, format_checker=self._formats)
            self._validators[(key, mode)] = cached
        return cached

    def validate_schema(
        self, key: str, schema: Mapping[str, Any], value: Any, mode: Mode, prefix: str
    ) -> list[str]:
        validator = self._validator(key, schema, mode)
        return [_error_text(prefix, e) for e in validator.iter_errors(value)]

    def validate_definition(self, name: str, value: Any, *, mode: Mode = "response") -> list[str]:
        """Check a value against `#/definitions/<name>` (used for webhook payload parts)."""
        if name not in self.doc.get("definitions", {}):
            return [f"no definition {name!r} in the swagger"]
        problems = self.validate_schema(
            f"def:{name}", {"$ref": f"#/definitions/{name}"}, value, mode, name
        )
        if self.strict_models and mode == "response":
            problems += model_problems(
                name, value, self.doc["definitions"], complete=self.strict_fields
            )
        return problems

    def _resolve_response(self, spec: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        ref = spec.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            return name, self.doc["responses"][name]
        return "", spec

    # ---- requests ----------------------------------------------------------------------

    def validate_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | Sequence[str]] | None = None,
        body: Any = NO_BODY,
    ) -> list[str]:
        """Violations in a request: unknown operation, bad path/query parameters or body."""
        method = method.upper()
        found = self.match(path)
        if found is None:
            return [f"{method} {path}: no such path in the swagger"]
        op = found.operation(method)
        if op is None:
            return [f"{method} {path}: the swagger has no {method} on {found.template}"]
        label = f"{method} {found.template} ({op.operation_id})"
        errors: list[str] = []
        params = op.parameters
        for p in params:
            if p.get("in") == "path":
                raw = found.path_params.get(str(p["name"]))
                if raw is None:
                    errors.append(f"{label}: missing path parameter {p['name']}")
                else:
                    errors += self._check_param(label, p, [raw])
        given = {k: ([v] if isinstance(v, str) else list(v)) for k, v in (query or {}).items()}
        declared = {str(p["name"]): p for p in params if p.get("in") == "query"}
        for name, values in given.items():
            if name in declared:
                errors += self._check_param(label, declared[name], values)
            elif name not in self.security_query_names:
                errors.append(f"{label}: unknown query parameter {name!r}")
        for name, p in declared.items():
            if p.get("required") and name not in given:
                errors.append(f"{label}: missing required query parameter {name!r}")
        body_params = [p for p in params if p.get("in") == "body"]
        if not body_params:
            if body is not NO_BODY:
                errors.append(f"{label}: this operation takes no request body")
            return errors
        bp = body_params[0]
        schema = bp.get("schema", {})
        if body is NO_BODY:
            if bp.get("required"):
                errors.append(f"{label}: missing required request body")
            body = {}
        errors += self.validate_schema(
            f"req:{method}:{found.template}", schema, body, "request", f"{label} body"
        )
        errors += self._required_not_null(label, schema, body)
        return errors

    def _required_not_null(self, label: str, schema: Mapping[str, Any], body: Any) -> list[str]:
        """Go decodes `null` as the zero value, which Gitea's `Required` binding rejects."""
        ref = schema.get("$ref")
        if not isinstance(body, dict) or not isinstance(ref, str):
            return []
        definition = self.doc.get("definitions", {}).get(ref.rsplit("/", 1)[-1], {})
        return [
            f"{label} body: {name}: required property is null"
            for name in definition.get("required", [])
            if name in body and body[name] is None
        ]

    def _check_param(self, label: str, p: Mapping[str, Any], values: list[str]) -> list[str]:
        name = p["name"]
        kind = p.get("type", "string")
        where = f"{label}: {p.get('in')} parameter {name!r}"
        if kind == "array":
            items = p.get("items", {})
            if p.get("collectionFormat", "csv") == "multi":
                parts = values
            else:
                parts = [x for v in values for x in v.split(",")]
            return [e for part in parts for e in self._check_scalar(where, items, part)]
        if len(values) > 1:
            return [f"{where}: given {len(values)} times (Gitea reads only the first)"]
        return self._check_scalar(where, p, values[0])

    def _check_scalar(self, where: str, p: Mapping[str, Any], raw: str) -> list[str]:
        kind = p.get("type", "string")
        value: Any = raw
        if kind == "integer":
            if not re.fullmatch(r"[+-]?\d+", raw):
                return [f"{where}: {raw!r} is not an integer"]
            value = int(raw)
            low, high = _INT_RANGES.get(str(p.get("format", "int64")), _INT_RANGES["int64"])
            if not low <= value <= high:
                return [f"{where}: {raw} is out of range for {p.get('format', 'int64')}"]
        elif kind == "number":
            try:
                value = float(raw)
            except ValueError:
                return [f"{where}: {raw!r} is not a number"]
        elif kind == "boolean":
            if raw not in _GO_BOOLS:
                return [f"{where}: {raw!r} is not a boolean"]
            value = raw in ("1", "t", "T", "TRUE", "true", "True")
        elif (
            kind == "string"
            and p.get("format")
            and not self._formats.conforms(raw, str(p["format"]))
        ):
            return [f"{where}: {raw!r} is not a valid {p['format']}"]
        if "enum" in p and value not in p["enum"]:
            return [f"{where}: {raw!r} is not one of {p['enum']}"]
        if "minimum" in p and value < p["minimum"]:
            return [f"{where}: {raw} is below the minimum {p['minimum']}"]
        if "maximum" in p and value > p["maximum"]:
            return [f"{where}: {raw} is above the maximum {p['maximum']}"]
        return []

    # ---- responses ---------------------------------------------------------------------

    def validate_response(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = NO_BODY,
        headers: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Violations in a response: undeclared status, body not matching, bad list headers."""
        method = method.upper()
        found = self.match(path)
        op = found.operation(method) if found else None
        if found is None or op is None:
            return [f"{method} {path}: response to an operation the swagger does not have"]
        label = f"{method} {found.template} -> {status}"
        responses = op.spec.get("responses", {})
        declared = responses.get(str(status)) or responses.get("default")
        if declared is None:
            if status < 400:
                return [f"{label}: status {status} is not declared ({sorted(responses)})"]
            return self._error_body(label, body, required=True)
        name, spec = self._resolve_response(declared)
        errors: list[str] = []
        if "schema" in spec:
            if body is NO_BODY:
                errors.append(f"{label}: missing response body ({name or 'inline'} schema)")
            else:
                errors += self.validate_schema(
                    f"resp:{method}:{found.template}:{status}",
                    spec["schema"],
                    body,
                    "response",
                    label,
                )
                if self.strict_models:
                    errors += [
                        f"{label}: {p}"
                        for p in schema_problems(
                            spec["schema"],
                            body,
                            self.doc["definitions"],
                            complete=self.strict_fields,
                        )
                    ]
        elif _ERROR_HEADER_NAMES & set(spec.get("headers", {})):
            errors += self._error_body(label, body, required=False)
        elif status == 204 or name == "empty":
            if body is not NO_BODY:
                errors.append(f"{label}: {name or 'this'} response must have no body")
        elif body is not NO_BODY:
            errors += self._error_body(label, body, required=False)
        if headers is not None and method == "GET" and 200 <= status < 300:
            errors += self._list_headers(label, op, body, headers)
        return errors

    def _error_body(self, label: str, body: Any, *, required: bool) -> list[str]:
        if body is NO_BODY:
            return [f"{label}: error responses carry a {{message, url}} body"] if required else []
        problems = self.validate_schema(
            "def:APIError", {"$ref": "#/definitions/APIError"}, body, "response", label
        )
        if self.strict_models:
            problems += [
                f"{label}: {p}"
                for p in model_problems(
                    "APIError", body, self.doc["definitions"], complete=self.strict_fields
                )
            ]
        return problems

    @staticmethod
    def _list_headers(
        label: str, op: Operation, body: Any, headers: Mapping[str, str]
    ) -> list[str]:
        if not {"page", "limit"} <= op.query_names() or not isinstance(body, list):
            return []
        lower = {k.lower(): v for k, v in headers.items()}
        errors = []
        total = lower.get("x-total-count")
        if total is None:
            errors.append(f"{label}: paginated list without X-Total-Count")
        elif not re.fullmatch(r"\d+", total):
            errors.append(f"{label}: X-Total-Count {total!r} is not a count")
        link = lower.get("link")
        if link is not None:
            errors += [f"{label}: {e}" for e in check_link_header(link)]
        return errors


def parse_link_header(value: str) -> dict[str, str]:
    """Gitea's `Link`: `<url>; rel="next",<url>; rel="last"` (comma, no space) -> {rel: url}."""
    return {rel: url for url, rel in _LINK_PART.findall(value)}


def check_link_header(value: str) -> list[str]:
    parts = value.split(",")
    errors = [
        f'Link part {p!r} is not <url>; rel="..."' for p in parts if not _LINK_PART.fullmatch(p)
    ]
    rels = [m[1] for m in _LINK_PART.findall(value)]
    if len(rels) != len(set(rels)):
        errors.append(f"Link repeats a rel: {value!r}")
    return errors


@lru_cache(maxsize=4)
def _default_validator(path: str) -> SwaggerValidator:
    return SwaggerValidator(Path(path))


def iter_operations(validator: SwaggerValidator) -> Iterable[Operation]:
    """Every operation in the document (for coverage checks in tests)."""
    for template, spec in validator.doc["paths"].items():
        for method in _METHODS:
            if method in spec:
                yield Operation(method.upper(), template, SwaggerValidator._merged(spec, method))
