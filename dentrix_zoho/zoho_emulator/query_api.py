"""Search (``/{module}/search``) and COQL (``POST /coql``) (https://www.zoho.com/crm/developer/docs/api/v8/search-records.html; "Query API" in the v8 docs).

Search criteria: ``(Field:operator:value)`` joined by ``and`` / ``or`` with parentheses; ``\\,``, ``\\(``
and ``\\)`` escape. Text comparisons are case-insensitive.
Index lag: Zoho documents that fresh records may return 204 from search until indexed.
With ``index_lag_seconds`` > 0 search leaves out records whose ``Created_Time`` is that recent; COQL
does the same, on the assumption (UNVERIFIED: Zoho says nothing of COQL's freshness) that it reads the
same index. Only creation lags: an updated record is found with its new values. Default 0: immediate.
COQL: ``select cols from Module where cond [order by col [asc|desc], ...] [limit n [offset m] | limit m, n]``
with ``=, !=, <, >, <=, >=, like, not like, in, not in, between, is null, is not null``, ``and`` / ``or`` and
parentheses, and a lone ``COUNT(col)``. Joins (``Lookup.Field``) are not emulated except ``Lookup.id``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import Call, api, json_response, no_content
from .errors import ApiError, limit_exceeded, required_param
from .limits import coql_cost
from .metadata import RECORD_MODULES
from .records_api import paginate, requested_fields, sorted_rows

MAX_CRITERIA = 10
SEARCH_REACH = 2_000
COQL_DEFAULT_LIMIT = 200
COQL_MAX_LIMIT = 2_000
COQL_OFFSET_REACH = 100_000
MAX_COLUMNS = 50

Predicate = Callable[[dict[str, Any]], bool]


def _indexed(call: Call, module: str) -> Iterable[dict[str, Any]]:
    """The module's records search and COQL can see: all, or those created before the index lag."""
    records = call.org.state.records.get(module, {}).values()
    lag = call.emulator.config.index_lag_seconds
    if lag <= 0:
        return records
    horizon = call.emulator.clock.now() - lag
    return [r for r in records if (_created_at(r) or 0.0) <= horizon]


def _created_at(record: dict[str, Any]) -> float | None:
    try:
        return datetime.fromisoformat(str(record.get("Created_Time"))).timestamp()
    except ValueError:
        return None


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return str(value.get("id", "")).lower()
    if isinstance(value, str):
        return value.lower()
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _comparable(left), _comparable(right)
    if op in ("equals", "="):
        if isinstance(left, list):
            return right in [_comparable(v) for v in left]
        return bool(left == right)
    if op in ("not_equal", "!="):
        return bool(left != right)
    if op == "starts_with":
        return isinstance(left, str) and left.startswith(str(right))
    if left is None:
        return False
    try:
        if op in ("greater_than", ">"):
            return bool(left > right)
        if op in ("greater_equal", ">="):
            return bool(left >= right)
        if op in ("less_than", "<"):
            return bool(left < right)
        if op in ("less_equal", "<="):
            return bool(left <= right)
    except TypeError:
        return False
    raise ValueError(op)


def _coerce(field: dict[str, Any], raw: str) -> Any:
    if field["data_type"] in ("integer", "double", "currency", "percent"):
        try:
            return float(raw) if "." in raw else int(raw)
        except ValueError:
            return raw
    if field["data_type"] == "boolean":
        return raw.lower() == "true"
    return raw


# ---- search criteria -----------------------------------------------------------------------------

_SEARCH_OPS = ("equals", "not_equal", "starts_with", "in", "not_in", "greater_than", "greater_equal",
               "less_than", "less_equal", "between")


def _invalid_query(reason: str, **details: Any) -> ApiError:
    return ApiError(400, "INVALID_QUERY", "invalid query formed", {"reason": reason, **details})


def _split_unescaped(text: str, sep: str, limit: int = -1) -> list[str]:
    parts = re.split(rf"(?<!\\){re.escape(sep)}", text, maxsplit=limit if limit > 0 else 0)
    return [p.replace(f"\\{sep}", sep) for p in parts]


def parse_criteria(text: str, fields: dict[str, dict[str, Any]]) -> Predicate:
    pos = 0
    count = 0

    def expr() -> Predicate:
        nonlocal pos
        left = term()
        while True:
            rest = text[pos:]
            match = re.match(r"\s*(and|or)\s*", rest, re.IGNORECASE)
            if not match:
                return left
            pos += match.end()
            right = term()
            left = _join(match.group(1).lower(), left, right)

    def term() -> Predicate:
        nonlocal pos, count
        if pos >= len(text) or text[pos] != "(":
            raise _invalid_query("invalid criteria")
        pos += 1
        if text.startswith("(", pos):
            inner = expr()
            if not text.startswith(")", pos):
                raise _invalid_query("invalid criteria")
            pos += 1
            return inner
        end = pos
        while end < len(text) and not (text[end] == ")" and text[end - 1] != "\\"):
            end += 1
        if end >= len(text):
            raise _invalid_query("invalid criteria")
        body = text[pos:end]
        pos = end + 1
        count += 1
        if count > MAX_CRITERIA:
            raise limit_exceeded(MAX_CRITERIA, "more than 10 criteria", param="criteria")
        return condition(body)

    def condition(body: str) -> Predicate:
        parts = re.split(r"(?<!\\):", body, maxsplit=2)
        if len(parts) != 3:
            raise _invalid_query("invalid criteria")
        name, op, raw = parts[0].strip(), parts[1].strip(), parts[2].replace("\\(", "(").replace("\\)", ")")
        field = fields.get(name)
        if field is None and name != "id":
            raise _invalid_query("the field given seems to be invalid", api_name=name)
        if op not in _SEARCH_OPS:
            raise _invalid_query("invalid operator found", api_name=name, operator=op)
        field = field or {"data_type": "text"}
        values = [_coerce(field, v) for v in _split_unescaped(raw, ",")]
        single = _coerce(field, raw.replace("\\,", ","))
        if op in ("in", "not_in"):
            wanted = {_comparable(v) for v in values}
            inside: Predicate = lambda r: _comparable(r.get(name)) in wanted  # noqa: E731
            return inside if op == "in" else (lambda r: not inside(r))
        if op == "between":
            if len(values) != 2:
                raise _invalid_query("between needs two values", api_name=name)
            low, high = values
            return lambda r: _compare(">=", r.get(name), low) and _compare("<=", r.get(name), high)
        return lambda r: _compare(op, r.get(name), single)

    result = expr()
    if pos != len(text.rstrip()):
        raise _invalid_query("invalid criteria")
    return result


def _join(word: str, left: Predicate, right: Predicate) -> Predicate:
    if word == "and":
        return lambda r: left(r) and right(r)
    return lambda r: left(r) or right(r)


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", value) if isinstance(value, str) else ""


@api("/crm/v8/{module}/search")
async def search_records(request: Request, call: Call) -> Response:
    module = call.module()
    call.require_module(module, "READ")
    call.require_any("ZohoSearch.securesearch.READ", "ZohoSearch.securesearch.ALL")
    params = request.query_params
    fields = call.org.fields(module)
    names = requested_fields(call, module, required=False)
    predicate: Predicate
    if params.get("criteria"):
        predicate = parse_criteria(params["criteria"].strip(), fields)
    elif params.get("email"):
        email = params["email"].lower()
        email_fields = [n for n, f in fields.items() if f["data_type"] == "email"]
        predicate = lambda r: any((r.get(n) or "").lower() == email for n in email_fields)  # noqa: E731
    elif params.get("phone"):
        phone = _digits(params["phone"])
        phone_fields = [n for n, f in fields.items() if f["data_type"] == "phone"]
        predicate = lambda r: bool(phone) and any(  # noqa: E731
            _digits(r.get(n)).endswith(phone) for n in phone_fields if r.get(n))
    elif params.get("word"):
        word = params["word"].lower()
        text_fields = [n for n, f in fields.items() if f["data_type"] in ("text", "textarea", "email", "phone")]
        predicate = lambda r: any(word in (r.get(n) or "").lower() for n in text_fields)  # noqa: E731
    else:
        raise required_param("criteria")
    call.charge(1, heavy=True)
    rows = [r for r in _indexed(call, module) if predicate(r)]
    if not rows:
        return no_content()
    ordered, sort_by, sort_order = sorted_rows(call, module, rows)
    return paginate(call, module, ordered, names, sort_by, sort_order, reach=SEARCH_REACH, allow_token=False,
                    reach_code="LIMIT_REACHED")


# ---- COQL -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:('(?:[^'\\]|\\.|'')*')|(-?\d+(?:\.\d+)?)(?![\w.])|(!=|<=|>=|=|<|>|\(|\)|,|\*)"
                    r"|([A-Za-z_$][\w$.]*))")


def _syntax_error(near: str) -> ApiError:
    return ApiError(400, "SYNTAX_ERROR", "error occured while parsing the query", {"near": near})


def _tokens(query: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    query = query.rstrip().rstrip(";")
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if not match or match.end() == pos:
            raise _syntax_error(query[pos:pos + 20])
        pos = match.end()
        string, number, symbol, word = match.groups()
        if string is not None:
            out.append(("str", string[1:-1].replace("''", "'").replace("\\'", "'")))
        elif number is not None:
            out.append(("num", float(number) if "." in number else int(number)))
        elif symbol is not None:
            out.append(("sym", symbol))
        elif word is not None:
            out.append(("word", word))
    return out


class _Coql:
    def __init__(self, query: str, call: Call) -> None:
        self.toks = _tokens(query)
        self.i = 0
        self.call = call

    def peek(self, offset: int = 0) -> tuple[str, Any]:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else ("end", None)

    def word(self, *words: str) -> bool:
        kind, value = self.peek()
        return kind == "word" and value.lower() in words

    def take(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok[0] == "end":
            raise _syntax_error("end of query")
        self.i += 1
        return tok

    def expect_word(self, word: str) -> None:
        if not self.word(word):
            raise ApiError(400, "SYNTAX_ERROR", "error occured while parsing the query", {"clause": word})
        self.i += 1

    def parse(self) -> dict[str, Any]:
        self.expect_word("select")
        columns: list[str] = []
        aggregate = None
        while True:
            kind, value = self.take()
            if kind != "word":
                raise _syntax_error(str(value))
            if self.peek() == ("sym", "("):
                self.take()
                _, inner = self.take()
                if self.take() != ("sym", ")") or value.upper() != "COUNT":
                    raise ApiError(400, "INVALID_QUERY", "invalid query formed",
                                   {"reason": "only COUNT is emulated among aggregate functions"})
                aggregate = (f"COUNT({inner})", inner)
            else:
                columns.append(value)
            if self.peek() != ("sym", ","):
                break
            self.take()
        if len(columns) > MAX_COLUMNS:
            raise limit_exceeded(MAX_COLUMNS, "more than 50 columns")
        if len(set(c.lower() for c in columns)) != len(columns):
            raise ApiError(400, "DUPLICATE_DATA", "duplicate column given", {})
        self.expect_word("from")
        kind, module_raw = self.take()
        module = next((m for m in RECORD_MODULES if m.lower() == str(module_raw).lower()), None)
        if module is None:
            raise ApiError(400, "INVALID_QUERY", "invalid query formed",
                           {"reason": "the module name given seems to be invalid", "module": module_raw})
        self.fields = self.call.org.fields(module)
        for column in columns + ([aggregate[1]] if aggregate else []):
            self.column(column)
        if not self.word("where"):
            raise ApiError(400, "SYNTAX_ERROR", "error occured while parsing the query", {"clause": "where"})
        self.take()
        where = self.disjunction()
        order: list[tuple[str, bool]] = []
        if self.word("order"):
            self.take()
            self.expect_word("by")
            while True:
                _, column = self.take()
                self.column(column)
                descending = False
                if self.word("asc", "desc"):
                    descending = self.take()[1].lower() == "desc"
                order.append((column, descending))
                if self.peek() != ("sym", ","):
                    break
                self.take()
        limit, offset = COQL_DEFAULT_LIMIT, 0
        if self.word("limit"):
            self.take()
            first = self.number()
            if self.peek() == ("sym", ","):
                self.take()
                offset, limit = first, self.number()
            else:
                limit = first
                if self.word("offset"):
                    self.take()
                    offset = self.number()
        if self.peek()[0] != "end":
            raise _syntax_error(str(self.peek()[1]))
        if limit > COQL_MAX_LIMIT or limit < 1:
            raise limit_exceeded(COQL_MAX_LIMIT, "limit must be between 1 and 2000")
        if offset + limit > COQL_OFFSET_REACH:
            raise limit_exceeded(COQL_OFFSET_REACH, "offset reach exceeded")
        return {"module": module, "columns": columns, "aggregate": aggregate, "where": where, "order": order,
                "limit": limit, "offset": offset}

    def number(self) -> int:
        kind, value = self.take()
        if kind != "num" or not isinstance(value, int):
            raise _syntax_error(str(value))
        return value

    def column(self, name: str) -> None:
        base, _, sub = name.partition(".")
        if base == "id" and not sub:
            return
        field = self.fields.get(base)
        if field is None or (sub and (sub != "id" or field["data_type"] not in ("lookup", "ownerlookup",
                                                                                   "userlookup"))):
            raise ApiError(400, "INVALID_QUERY", "invalid query formed",
                           {"reason": "column given seems to be invalid", "column_name": name})

    def disjunction(self) -> Predicate:
        left = self.conjunction()
        while self.word("or"):
            self.take()
            left = _join("or", left, self.conjunction())
        return left

    def conjunction(self) -> Predicate:
        left = self.atom()
        while self.word("and"):
            self.take()
            left = _join("and", left, self.atom())
        return left

    def value(self) -> Any:
        kind, value = self.take()
        if kind in ("str", "num"):
            return value
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "word" and value.lower() == "null":
            return None
        raise _syntax_error(str(value))

    def atom(self) -> Predicate:
        if self.peek() == ("sym", "("):
            self.take()
            inner = self.disjunction()
            if self.take() != ("sym", ")"):
                raise _syntax_error(")")
            return inner
        kind, name = self.take()
        if kind != "word":
            raise _syntax_error(str(name))
        self.column(name)
        base, _, _sub = name.partition(".")

        def get(r: dict[str, Any]) -> Any:
            return r.get(base)

        negate = False
        if self.word("is"):
            self.take()
            if self.word("not"):
                self.take()
                negate = True
            if self.value() is not None:
                raise _syntax_error("is")
            return (lambda r: get(r) not in (None, "", [])) if negate else (lambda r: get(r) in (None, "", []))
        if self.word("not"):
            self.take()
            negate = True
        if self.word("like"):
            self.take()
            pattern = self.value()
            regex = re.compile("^" + re.escape(str(pattern)).replace("%", ".*") + "$", re.IGNORECASE | re.DOTALL)
            like: Predicate = lambda r: isinstance(get(r), str) and bool(regex.match(get(r)))  # noqa: E731
            return (lambda r: not like(r)) if negate else like
        if self.word("in"):
            self.take()
            if self.take() != ("sym", "("):
                raise _syntax_error("in")
            values = [self.value()]
            while self.peek() == ("sym", ","):
                self.take()
                values.append(self.value())
            if self.take() != ("sym", ")"):
                raise _syntax_error("in")
            wanted = {_comparable(v) for v in values}
            inside: Predicate = lambda r: _comparable(get(r)) in wanted  # noqa: E731
            return (lambda r: not inside(r)) if negate else inside
        if self.word("between"):
            self.take()
            low = self.value()
            self.expect_word("and")
            high = self.value()
            return lambda r: _compare(">=", get(r), low) and _compare("<=", get(r), high)
        kind, op = self.take()
        if kind != "sym" or op not in ("=", "!=", "<", ">", "<=", ">="):
            raise _syntax_error(str(op))
        value = self.value()
        return lambda r: _compare(op, get(r), value)


def _coql_value(record: dict[str, Any], column: str) -> Any:
    base, _, sub = column.partition(".")
    value = record.get(base)
    if isinstance(value, dict) and "id" in value:
        return value["id"] if sub else {"id": value["id"]}
    return value


@api("/crm/v8/coql")
async def coql(request: Request, call: Call) -> Response:
    call.require_any("ZohoCRM.coql.READ", "ZohoCRM.coql.ALL")
    body = await call.json_body()
    query = body.get("select_query") if isinstance(body, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise required_param("select_query")
    plan = _Coql(query.strip(), call).parse()
    call.require_module(plan["module"], "READ")
    call.charge(coql_cost(plan["limit"]), heavy=True)
    rows = [r for r in _indexed(call, plan["module"]) if plan["where"](r)]
    if plan["aggregate"]:
        label, column = plan["aggregate"]
        count = sum(1 for r in rows if column == "id" or r.get(column) not in (None, "", []))
        return json_response({"data": [{label: count}], "info": {"count": 1, "more_records": False}})
    for column, descending in reversed(plan["order"]):
        rows.sort(key=lambda r: (r.get(column) is None, _comparable(_coql_value(r, column)) or ""),
                  reverse=descending)
    window = rows[plan["offset"]: plan["offset"] + plan["limit"]]
    if not window:
        return no_content()
    data = [{**{c: _coql_value(r, c) for c in plan["columns"]}, "id": r["id"]} for r in window]
    more = plan["offset"] + plan["limit"] < len(rows)
    return json_response({"data": data, "info": {"count": len(data), "more_records": more}})


ROUTES = [
    Route("/crm/v8/coql", coql, methods=["POST"]),
    Route("/crm/v8/{module}/search", search_records, methods=["GET"]),
]
