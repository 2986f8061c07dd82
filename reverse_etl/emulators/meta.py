"""Meta Custom Audiences emulator: ad accounts, customer-file audiences and their hashed members.

Validates what the Graph API validates on the users edge (payload/session parameters from the
codegen node spec in fixtures/meta, known schema keys, 64-char lowercase hex for hashed keys, 10,000
rows per request), counts bad rows in ``num_invalid_entries`` with samples, and answers throttling
the Meta way: HTTP 400 with error code 80003 and the wait in ``X-Business-Use-Case-Usage``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

FIXTURES = Path(__file__).parent / "fixtures" / "meta"
MAX_ROWS = 10_000
MULTI_KEYS = frozenset(
    [
        "EXTERN_ID",
        "EMAIL",
        "PHONE",
        "GEN",
        "DOBY",
        "DOBM",
        "DOBD",
        "LN",
        "FN",
        "FI",
        "CT",
        "ST",
        "ZIP",
        "MADID",
        "COUNTRY",
        "LOOKALIKE_VALUE",
        "DATA_PROCESSING_OPTIONS",
        "DATA_PROCESSING_OPTIONS_COUNTRY",
        "DATA_PROCESSING_OPTIONS_STATE",
    ]
)
SINGLE_KEYS = frozenset({"EMAIL_SHA256", "PHONE_SHA256", "MOBILE_ADVERTISER_ID", "UID"})
UNHASHED = frozenset({"EXTERN_ID", "MADID", "MOBILE_ADVERTISER_ID", "UID", "LOOKALIKE_VALUE"}) | {
    k for k in MULTI_KEYS if k.startswith("DATA_PROCESSING")
}
MATCH_KEYS = ("EMAIL", "EMAIL_SHA256", "PHONE", "PHONE_SHA256", "EXTERN_ID", "MADID", "MOBILE_ADVERTISER_ID")


def _load_spec() -> tuple[dict[tuple[str, str], set[str]], set[str], set[str]]:
    """Edge parameters, audience-create parameters and customer_file_source values from the node spec."""
    spec = json.loads((FIXTURES / "CustomAudience.json").read_text())
    edges: dict[tuple[str, str], set[str]] = {}
    create: set[str] = set()
    for api in spec["apis"]:
        params = {p["name"] for p in api.get("params", [])}
        if api.get("endpoint"):
            edges[(api["method"], api["endpoint"])] = params
        elif api["method"] == "POST":
            create = params
    enums = json.loads((FIXTURES / "customaudience_enum_types.json").read_text())
    sources = next(e["values"] for e in enums if e["name"].endswith("customer_file_source"))
    return edges, create, set(sources)


EDGE_PARAMS, CREATE_PARAMS, FILE_SOURCES = _load_spec()


def graph_error(status: int, code: int, message: str, subcode: int | None = None) -> Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "Emul8",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return Response(status, {"error": error})


class MetaEmulator(Emulator):
    name = "meta"
    default_credentials: ClassVar[dict[str, str]] = {"access_token": "meta-test-token"}

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        access_token: str = "meta-test-token",
        app_secret: str | None = None,
        ad_account_id: str = "1234567890",
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, **kwargs)
        self.access_token = access_token
        self.app_secret = app_secret
        self.accounts = {f"act_{ad_account_id.removeprefix('act_')}"}
        self.audiences: dict[str, dict[str, Any]] = {}
        self.sessions: dict[tuple[str, int], dict[str, Any]] = {}
        self._ids = itertools.count(23850000000000001)

    # -- inspection ------------------------------------------------------------------------------

    def members(self, audience_id: str) -> set[str]:
        """Hashed emails (or the first match key) of the audience's members."""
        with self.lock:
            return set(self.audiences[audience_id]["members"])

    def audience_by_name(self, name: str) -> str | None:
        with self.lock:
            return next((aid for aid, a in self.audiences.items() if a["name"] == name), None)

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else (request.query.get("access_token") or [""])[0]
        if token != self.access_token:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        if self.app_secret is not None:
            expected = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if (request.query.get("appsecret_proof") or [""])[0] != expected:
                return graph_error(400, 100, "Invalid appsecret_proof provided in the API argument")
        return None

    def authenticate_failure(self) -> Response:
        return graph_error(400, 190, "Error validating access token: Session has expired", 463)

    def throttle_response(self) -> Response:
        usage = {
            "1234567890": [
                {
                    "type": "custom_audience",
                    "call_count": 100,
                    "total_cputime": 40,
                    "total_time": 60,
                    "estimated_time_to_regain_access": self.faults.retry_after / 60.0,
                }
            ]
        }
        response = graph_error(400, 80003, "There have been too many calls to this ad-account.", 2446079)
        response.headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
        return response

    def server_error_response(self) -> Response:
        response = graph_error(500, 2, "Service temporarily unavailable")
        response.body["error"]["is_transient"] = True
        return response

    # -- params ----------------------------------------------------------------------------------

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        """Graph accepts a JSON body or form fields whose values are JSON strings."""
        if not request.body:
            return {k: v[0] for k, v in request.query.items()}
        if request.headers.get("content-type", "").startswith("application/json"):
            body = request.json()
            return body if isinstance(body, dict) else {}
        params: dict[str, Any] = {}
        for key, values in parse_qs(request.body.decode()).items():
            try:
                params[key] = json.loads(values[0])
            except ValueError:
                params[key] = values[0]
        return params

    # -- routes ----------------------------------------------------------------------------------

    @route("GET", "/{node}")
    def get_node(self, request: Request) -> Response:
        node = request.params["node"]
        if node in self.accounts:
            return Response(200, {"id": node, "name": "Emulated ad account"})
        if node in self.audiences:
            a = self.audiences[node]
            return Response(
                200, {"id": node, "name": a["name"], "approximate_count_lower_bound": len(a["members"])}
            )
        return graph_error(400, 100, f"Unsupported get request. Object with ID '{node}' does not exist", 33)

    @route("GET", "/{account}/customaudiences")
    def list_audiences(self, request: Request) -> Response:
        account = request.params["account"]
        if account not in self.accounts:
            return graph_error(400, 100, f"Object with ID '{account}' does not exist", 33)
        data = [
            {"id": aid, "name": a["name"]} for aid, a in self.audiences.items() if a["account"] == account
        ]
        return Response(200, {"data": data, "paging": {}})

    @route("POST", "/{account}/customaudiences")
    def create_audience(self, request: Request) -> Response:
        account = request.params["account"]
        if account not in self.accounts:
            return graph_error(400, 100, f"Object with ID '{account}' does not exist", 33)
        params = self._params(request)
        unknown = sorted(set(params) - CREATE_PARAMS - {"subtype"})
        if unknown:
            return graph_error(400, 100, f"(#100) Param {unknown[0]} is not a valid parameter")
        if not params.get("name"):
            return graph_error(400, 100, "(#100) The parameter name is required")
        source = params.get("customer_file_source")
        if source is not None and source not in FILE_SOURCES:
            return graph_error(400, 100, f"(#100) customer_file_source must be one of {sorted(FILE_SOURCES)}")
        audience_id = str(next(self._ids))
        self.audiences[audience_id] = {
            "name": params["name"],
            "account": account,
            "members": {},
            "index": {},
            "source": source,
        }
        return Response(200, {"id": audience_id})

    @route("POST", "/{audience_id}/users")
    def add_users(self, request: Request) -> Response:
        return self._users(request, remove=False)

    @route("DELETE", "/{audience_id}/users")
    def remove_users(self, request: Request) -> Response:
        return self._users(request, remove=True)

    @route("GET", "/{audience_id}/sessions")
    def get_sessions(self, request: Request) -> Response:
        audience_id = request.params["audience_id"]
        data = [dict(s) for (aid, _), s in self.sessions.items() if aid == audience_id]
        return Response(200, {"data": data})

    def _users(self, request: Request, *, remove: bool) -> Response:
        audience_id = request.params["audience_id"]
        audience = self.audiences.get(audience_id)
        if audience is None:
            return graph_error(400, 100, f"Object with ID '{audience_id}' does not exist", 33)
        params = self._params(request)
        method = "DELETE" if remove else "POST"
        unknown = sorted(set(params) - EDGE_PARAMS[(method, "users")])
        if unknown:
            return graph_error(400, 100, f"(#100) Param {unknown[0]} is not a valid parameter")
        payload = params.get("payload")
        if not isinstance(payload, dict):
            return graph_error(400, 100, "(#100) The parameter payload is required")
        schema = payload.get("schema")
        data = payload.get("data")
        if isinstance(schema, str):
            schema = [schema]
        if not isinstance(schema, list) or not schema:
            return graph_error(400, 100, "(#100) payload.schema must be a key or a list of keys")
        known = SINGLE_KEYS if len(schema) == 1 and schema[0] in SINGLE_KEYS else MULTI_KEYS
        bad = [key for key in schema if key not in known]
        if bad or len(set(schema)) != len(schema):
            return graph_error(400, 100, f"(#100) Invalid schema key(s) {bad or schema}")
        if not isinstance(data, list):
            return graph_error(400, 100, "(#100) payload.data must be an array")
        if len(data) > MAX_ROWS:
            return graph_error(
                400, 100, f"(#100) Too many rows: {len(data)} (at most {MAX_ROWS} per request)"
            )
        session = params.get("session")
        if session is not None:
            error = self._check_session(audience_id, session, len(data))
            if error:
                return error
        invalid: dict[str, str] = {}
        invalid_count = 0
        for raw in data:
            row = raw if isinstance(raw, list) else [raw]
            problem = self._row_problem(schema, row)
            if problem:
                invalid_count += 1
                value, reason = problem
                if len(invalid) < 100:
                    invalid[value] = reason
                continue
            values = dict(zip(schema, row, strict=True))
            self._apply(audience, values, remove=remove)
        received = len(data)
        if session is not None:
            received = self.sessions[(audience_id, int(session["session_id"]))]["num_received"]
        body: dict[str, Any] = {
            "audience_id": audience_id,
            "num_received": received,
            "num_invalid_entries": invalid_count,
            "invalid_entry_samples": invalid,
        }
        if session is not None:
            body["session_id"] = str(session["session_id"])
        return Response(200, body)

    def _check_session(self, audience_id: str, session: Any, rows: int) -> Response | None:
        if not isinstance(session, dict):
            return graph_error(400, 100, "(#100) session must be an object")
        sid, seq, last = session.get("session_id"), session.get("batch_seq"), session.get("last_batch_flag")
        if not isinstance(sid, int) or isinstance(sid, bool) or not 0 < sid < 2**63:
            return graph_error(400, 100, "(#100) session.session_id must be a positive 64-bit integer")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return graph_error(400, 100, "(#100) session.batch_seq must be an integer starting at 1")
        if last is not None and not isinstance(last, bool):
            return graph_error(400, 100, "(#100) session.last_batch_flag must be a boolean")
        state = self.sessions.setdefault(
            (audience_id, sid),
            {"session_id": str(sid), "num_received": 0, "stage": "uploading", "batches": set()},
        )
        if state["stage"] == "finished" and seq not in state["batches"]:
            return graph_error(400, 2650, "(#2650) The session has finished; start a new session", 1870159)
        if seq not in state["batches"]:  # a resent batch is not counted twice
            state["num_received"] += rows
            state["batches"].add(seq)
        if last:
            state["stage"] = "finished"
        return None

    def _row_problem(self, schema: list[str], row: list[Any]) -> tuple[str, str] | None:
        if len(row) != len(schema):
            return json.dumps(row)[:200], f"row has {len(row)} values for {len(schema)} schema keys"
        for key, value in zip(schema, row, strict=True):
            if not isinstance(value, (str, list)):
                return str(value), f"{key} must be a string"
            if value in ("", []):
                continue
            if value in self.faults.reject_values:
                return str(value), f"{key} rejected"
            if key not in UNHASHED and (len(value) != 64 or value != value.lower() or not _is_hex(value)):
                return str(value), f"{key} is not a SHA-256 lowercase hex digest"
        if not any(v not in ("", []) for k, v in zip(schema, row, strict=True) if k in MATCH_KEYS):
            return json.dumps(row)[:200], "row has no match key"
        return None

    @staticmethod
    def _apply(audience: dict[str, Any], values: dict[str, Any], *, remove: bool) -> None:
        """Members are people: a row matches an existing member through any of its match keys."""
        members: dict[str, dict[str, Any]] = audience["members"]
        index: dict[str, str] = audience["index"]
        keys = [values[k] for k in MATCH_KEYS if values.get(k)]
        existing = next((index[v] for v in keys if v in index), None)
        if remove:
            if existing is not None:
                for value in members.pop(existing).values():
                    index.pop(value, None)
            return
        if existing is None:
            existing = keys[0]
            members[existing] = {}
        members[existing].update({k: v for k, v in values.items() if v})
        for k in MATCH_KEYS:
            if members[existing].get(k):
                index[members[existing][k]] = existing


def _is_hex(value: str) -> bool:
    try:
        int(value, 16)
    except ValueError:
        return False
    return True
