"""Google Ads Customer Match emulator: user lists and the OfflineUserDataJob flow over REST.

Request bodies are checked against field names, enum values, oneofs and required fields read from the
v25 protos kept in fixtures/google_ads (REST is gRPC transcoding, so JSON keys are the proto names in
lowerCamelCase). Job rules follow the OfflineUserDataJobError comments: at most 20 identifiers per
operation and 100,000 per request, removeAll only first, no mixing of create and remove in one job, no
operations after run. Throttling is HTTP 429 RESOURCE_EXHAUSTED with ``quotaErrorDetails.retryDelay``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

FIXTURES = Path(__file__).parent / "fixtures" / "google_ads"
VERSION = "v25"
FAILURE_TYPE = f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"
MAX_IDENTIFIERS_PER_OPERATION = 20
MAX_IDENTIFIERS_PER_REQUEST = 100_000
HASHED_FIELDS = ("hashedEmail", "hashedPhoneNumber")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# -- a small proto reader: enough to validate JSON bodies by field name ---------------------------


@dataclass
class ProtoField:
    name: str
    type: str  # short type name: a scalar, a message or an enum
    repeated: bool = False
    required: bool = False
    oneof: str | None = None


@dataclass
class ProtoMessage:
    name: str
    fields: dict[str, ProtoField] = field(default_factory=dict)


SCALARS = {
    "string": str,
    "bool": bool,
    "int32": int,
    "int64": (int, str),
    "double": (int, float),
    "float": (int, float),
    "bytes": str,
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_protos(paths: list[Path]) -> tuple[dict[str, ProtoMessage], dict[str, set[str]]]:
    """Messages (by short name, fields keyed by JSON name) and enums (short name -> values)."""
    messages: dict[str, ProtoMessage] = {}
    enums: dict[str, set[str]] = {}
    for path in paths:
        # Drop comments but not "//" inside strings (URLs in options).
        text = re.sub(r'("(?:[^"\\]|\\.)*")|//[^\n]*', lambda m: m.group(1) or "", path.read_text())
        # Field options become one marker token: only REQUIRED matters here.
        text = re.sub(r"\[[^\]]*\]", lambda m: " @REQUIRED " if "REQUIRED" in m.group(0) else " ", text)
        tokens = re.findall(r"@REQUIRED|[A-Za-z_][\w.]*|\d+|[{}=;]|\"[^\"]*\"", text)
        stack: list[tuple[str, str]] = []  # (kind, name)
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok in ("syntax", "package", "import", "option") or (tok == "rpc"):
                depth = 0
                while i < len(tokens):  # skip to the end of the statement or block
                    if tokens[i] == "{":
                        depth += 1
                    elif tokens[i] == "}":
                        depth -= 1
                        if depth == 0 and tok == "rpc":
                            break
                    elif tokens[i] == ";" and depth == 0:
                        break
                    i += 1
                i += 1
                continue
            if (
                tok in ("message", "enum", "oneof", "service")
                and i + 2 < len(tokens)
                and tokens[i + 2] == "{"
            ):
                name = tokens[i + 1]
                stack.append((tok, name))
                if tok == "message":
                    messages[name] = ProtoMessage(name)
                elif tok == "enum":
                    enums[name] = set()
                i += 3
                continue
            if tok == "}":
                stack.pop()
                i += 1
                continue
            if not stack:
                i += 1
                continue
            kind, name = stack[-1]
            if kind == "enum" and i + 2 < len(tokens) and tokens[i + 1] == "=":
                enums[name].add(tok)
                i = tokens.index(";", i) + 1
                continue
            if kind in ("message", "oneof"):
                end = tokens.index(";", i)
                stmt = tokens[i:end]
                i = end + 1
                if "=" not in stmt:
                    continue
                eq = stmt.index("=")
                label = stmt[0] if stmt[0] in ("optional", "repeated") else None
                ftype, fname = stmt[eq - 2], stmt[eq - 1]
                owner = next(n for k, n in reversed(stack) if k == "message")
                messages[owner].fields[_camel(fname)] = ProtoField(
                    name=fname,
                    type=ftype.rsplit(".", 1)[-1],
                    repeated=label == "repeated",
                    required="@REQUIRED" in stmt,
                    oneof=name if kind == "oneof" else None,
                )
                continue
            i += 1
    return messages, enums


MESSAGES, ENUMS = parse_protos(sorted(FIXTURES.glob("*.proto")))
# common/user_lists.proto is not among the stored protos: the one message the flow needs, by hand.
MESSAGES["CrmBasedUserListInfo"] = ProtoMessage(
    "CrmBasedUserListInfo",
    {
        "appId": ProtoField("app_id", "string"),
        "uploadKeyType": ProtoField("upload_key_type", "CustomerMatchUploadKeyType"),
        "dataSourceType": ProtoField("data_source_type", "string"),
    },
)


def validate(message: str, value: Any, path: str = "", *, bound: tuple[str, ...] = ()) -> list[str]:
    """Problems with ``value`` as JSON for proto ``message``; fields named in ``bound`` come from the URL."""
    spec = MESSAGES.get(message)
    if spec is None:  # google.rpc.Status, FieldMask ...: not validated
        return []
    if not isinstance(value, dict):
        return [f"{path or message}: expected an object for {message}"]
    problems: list[str] = []
    oneofs: dict[str, str] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        fspec = spec.fields.get(key)
        if fspec is None:
            problems.append(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{path or message}': Cannot find field."
            )
            continue
        if fspec.oneof:
            if fspec.oneof in oneofs:
                problems.append(f"{where}: oneof '{fspec.oneof}' already set by {oneofs[fspec.oneof]}")
            oneofs[fspec.oneof] = key
        items = item if fspec.repeated else [item]
        if fspec.repeated and not isinstance(item, list):
            problems.append(f"{where}: expected a list")
            continue
        for n, element in enumerate(items):
            at = f"{where}[{n}]" if fspec.repeated else where
            if fspec.type in SCALARS:
                if not isinstance(element, SCALARS[fspec.type]) or (
                    fspec.type != "bool" and isinstance(element, bool)
                ):
                    problems.append(f"{at}: expected {fspec.type}")
            elif fspec.type in ENUMS:
                if element not in ENUMS[fspec.type]:
                    problems.append(f"{at}: invalid value {element!r} for enum {fspec.type}")
            else:
                problems.extend(validate(fspec.type, element, at))
    for key, fspec in spec.fields.items():
        if fspec.required and key not in value and fspec.name not in bound:
            problems.append(f"{path + '.' if path else ''}{key}: required field is missing")
    return problems


def rpc_error(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
    body: dict[str, Any] = {"error": {"code": status, "message": message, "status": code}}
    if errors is not None:
        body["error"]["details"] = [
            {"@type": FAILURE_TYPE, "errors": errors, "requestId": "emulated-request"}
        ]
    return Response(status, body)


def ads_error(
    kind: str, value: str, message: str, location: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"errorCode": {kind: value}, "message": message}
    if location:
        error["location"] = {"fieldPathElements": location}
    return error


class GoogleAdsEmulator(Emulator):
    name = "google_ads"
    default_credentials: ClassVar[dict[str, str]] = {
        "access_token": "ya29.test",
        "developer_token": "dev-token",
    }

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        access_token: str = "ya29.test",
        developer_token: str = "dev-token",
        customer_id: str = "1234567890",
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, **kwargs)
        self.access_token = access_token
        self.developer_token = developer_token
        self.customer_id = customer_id
        self.user_lists: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(9000000001)

    # -- inspection ------------------------------------------------------------------------------

    def list_identifiers(self, user_list: str, kind: str = "hashedEmail") -> set[str]:
        """Identifiers of one kind held by a list (given by id or resource name)."""
        list_id = user_list.rsplit("/", 1)[-1]
        with self.lock:
            return {value for k, value in self.user_lists[list_id]["members"] if k == kind}

    def list_by_name(self, name: str) -> str | None:
        with self.lock:
            return next((lid for lid, ul in self.user_lists.items() if ul["name"] == name), None)

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return self.authenticate_failure()
        if request.headers.get("developer-token") != self.developer_token:
            return rpc_error(
                401,
                "UNAUTHENTICATED",
                "The developer token is not valid.",
                [
                    ads_error(
                        "authenticationError", "DEVELOPER_TOKEN_INVALID", "The developer token is not valid."
                    )
                ],
            )
        return None

    def authenticate_failure(self) -> Response:
        return rpc_error(
            401,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential. Expected OAuth 2 access token.",
            [ads_error("authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token is invalid.")],
        )

    def throttle_response(self) -> Response:
        error = ads_error(
            "quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED", "Too many requests. Retry in a few seconds."
        )
        error["details"] = {
            "quotaErrorDetails": {
                "rateScope": "DEVELOPER",
                "rateName": "Number of operations for basic access",
                "retryDelay": f"{self.faults.retry_after:g}s",
            }
        }
        return rpc_error(
            429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [error]
        )

    def server_error_response(self) -> Response:
        return rpc_error(503, "UNAVAILABLE", "The service is currently unavailable.")

    def _customer(self, request: Request) -> Response | None:
        if request.params.get("cid") != self.customer_id:
            return rpc_error(
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
                [
                    ads_error(
                        "authorizationError",
                        "USER_PERMISSION_DENIED",
                        "User doesn't have permission to access customer.",
                    )
                ],
            )
        return None

    @staticmethod
    def _invalid(problems: list[str]) -> Response:
        errors = [ads_error("requestError", "INVALID_INPUT", p) for p in problems[:20]]
        return rpc_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", errors)

    # -- routes ----------------------------------------------------------------------------------

    @route("GET", f"/{VERSION}/customers:listAccessibleCustomers")
    def list_accessible(self, request: Request) -> Response:
        return Response(200, {"resourceNames": [f"customers/{self.customer_id}"]})

    @route("POST", f"/{VERSION}/customers/{{cid}}/googleAds:search")
    def search(self, request: Request) -> Response:
        denied = self._customer(request)
        if denied:
            return denied
        query = str((request.json() or {}).get("query", ""))
        match = re.search(
            r"from\s+user_list\s+where\s+user_list\.name\s*=\s*'((?:[^'\\]|\\.)*)'", query, re.I
        )
        if not match:
            return self._invalid([f"query not supported by the emulator: {query[:120]}"])
        name = match.group(1).replace("\\'", "'")
        results = [
            {"userList": {"resourceName": ul["resource_name"], "id": lid, "name": ul["name"]}}
            for lid, ul in self.user_lists.items()
            if ul["name"] == name
        ]
        return Response(200, {"results": results, "fieldMask": "userList.id,userList.name"})

    @route("POST", f"/{VERSION}/customers/{{cid}}/userLists:mutate")
    def mutate_user_lists(self, request: Request) -> Response:
        denied = self._customer(request)
        if denied:
            return denied
        body = request.json()
        problems = validate("MutateUserListsRequest", body, bound=("customer_id",))
        if problems:
            return self._invalid(problems)
        results = []
        for n, op in enumerate(body["operations"]):
            create = op.get("create")
            if not create or not create.get("name"):
                return self._invalid([f"operations[{n}]: only create with a name is emulated"])
            if any(ul["name"] == create["name"] for ul in self.user_lists.values()):
                return rpc_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Request contains an invalid argument.",
                    [
                        ads_error(
                            "userListError",
                            "NAME_ALREADY_USED",
                            "Name is already being used for another user list.",
                        )
                    ],
                )
            list_id = str(next(self._ids))
            resource = f"customers/{self.customer_id}/userLists/{list_id}"
            self.user_lists[list_id] = {
                "name": create["name"],
                "resource_name": resource,
                "members": set(),
                "spec": create,
            }
            results.append({"resourceName": resource})
        return Response(200, {"results": results})

    @route("POST", f"/{VERSION}/customers/{{cid}}/offlineUserDataJobs:create")
    def create_job(self, request: Request) -> Response:
        denied = self._customer(request)
        if denied:
            return denied
        body = request.json()
        problems = validate("CreateOfflineUserDataJobRequest", body, bound=("customer_id",))
        if problems:
            return self._invalid(problems)
        job = body["job"]
        if job.get("type") != "CUSTOMER_MATCH_USER_LIST":
            return self._invalid([f"job.type {job.get('type')!r} is not emulated"])
        metadata = job.get("customerMatchUserListMetadata") or {}
        list_id = str(metadata.get("userList", "")).rsplit("/", 1)[-1]
        if list_id not in self.user_lists:
            return rpc_error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                [
                    ads_error(
                        "offlineUserDataJobError",
                        "INVALID_USER_LIST_ID",
                        "The user list ID provided for the job is invalid.",
                    )
                ],
            )
        job_id = str(next(self._ids))
        resource = f"customers/{self.customer_id}/offlineUserDataJobs/{job_id}"
        self.jobs[job_id] = {
            "resource_name": resource,
            "list_id": list_id,
            "consent": metadata.get("consent"),
            "status": "PENDING",
            "operations": [],
            "kind": None,
        }
        return Response(200, {"resourceName": resource})

    @route("POST", f"/{VERSION}/customers/{{cid}}/offlineUserDataJobs/{{job}}:addOperations")
    def add_operations(self, request: Request) -> Response:
        denied = self._customer(request)
        if denied:
            return denied
        job = self.jobs.get(request.params["job"])
        if job is None:
            return rpc_error(404, "NOT_FOUND", f"Job {request.params['job']} not found.")
        body = request.json()
        problems = validate("AddOfflineUserDataJobOperationsRequest", body, bound=("resource_name",))
        if problems:
            return self._invalid(problems)
        if job["status"] != "PENDING":
            return rpc_error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                [
                    ads_error(
                        "offlineUserDataJobError",
                        "JOB_ALREADY_STARTED",
                        "Once the upload job is started, new operations cannot be added.",
                    )
                ],
            )
        operations = body["operations"]
        total = sum(
            len((op.get("create") or op.get("remove") or {}).get("userIdentifiers", [])) for op in operations
        )
        if total > MAX_IDENTIFIERS_PER_REQUEST:
            return rpc_error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                [
                    ads_error(
                        "offlineUserDataJobError",
                        "TOO_MANY_USER_IDENTIFIERS",
                        f"{total} user identifiers in one request; at most {MAX_IDENTIFIERS_PER_REQUEST}.",
                    )
                ],
            )
        failures: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        for n, op in enumerate(operations):
            error = self._operation_error(job, op, n, accepted)
            if error:
                failures.append(error)
            else:
                accepted.append(op)
        if failures and not body.get("enablePartialFailure"):
            return rpc_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", failures)
        for op in accepted:
            job["kind"] = job["kind"] or ("remove" if "remove" in op else "create")
            job["operations"].append(op)
        response: dict[str, Any] = {}
        if failures:
            response["partialFailureError"] = {
                "code": 3,
                "message": f"Multiple errors in 'details'. First error: {failures[0]['message']}",
                "details": [{"@type": FAILURE_TYPE, "errors": failures, "requestId": "emulated-request"}],
            }
        return Response(200, response)

    def _operation_error(
        self, job: dict[str, Any], op: dict[str, Any], n: int, accepted: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        at = [{"fieldName": "operations", "index": n}]
        if "removeAll" in op:
            if job["operations"] or accepted:
                return ads_error(
                    "offlineUserDataJobError",
                    "INVALID_OPERATION_ORDER",
                    "removeAll must be the first operation.",
                    at,
                )
            return None
        kind = "create" if "create" in op else "remove"
        earlier = job["kind"] or next(
            ("remove" if "remove" in a else "create" for a in accepted if "removeAll" not in a), None
        )
        if earlier and earlier != kind:
            return ads_error(
                "offlineUserDataJobError",
                "CONFLICTING_OPERATION",
                "Mixing creation and removal of offline data in the same job is not allowed.",
                at,
            )
        user_data = op.get(kind) or {}
        identifiers = user_data.get("userIdentifiers") or []
        if not identifiers:
            return ads_error(
                "offlineUserDataJobError",
                "MISSING_USER_IDENTIFIER",
                "User identifier is required.",
                [*at, {"fieldName": kind}],
            )
        if len(identifiers) > MAX_IDENTIFIERS_PER_OPERATION:
            return ads_error(
                "offlineUserDataJobError",
                "TOO_MANY_USER_IDENTIFIERS",
                "Maximum number of user identifiers per operation is 20.",
                [*at, {"fieldName": kind}],
            )
        for i, identifier in enumerate(identifiers):
            for key in HASHED_FIELDS:
                value = identifier.get(key)
                if value is None:
                    continue
                where = [
                    *at,
                    {"fieldName": kind},
                    {"fieldName": "user_identifiers", "index": i},
                    {"fieldName": key},
                ]
                if not _HEX64.match(value) or value in self.faults.reject_values:
                    return ads_error(
                        "offlineUserDataJobError",
                        "INVALID_ENCODING",
                        f"{key} must be a lowercase hex SHA-256 digest.",
                        where,
                    )
            address = identifier.get("addressInfo")
            if address is not None and len(str(address.get("countryCode", ""))) != 2:
                return ads_error(
                    "offlineUserDataJobError",
                    "INVALID_COUNTRY_CODE",
                    "The country code is invalid.",
                    [*at, {"fieldName": kind}],
                )
        return None

    @route("POST", f"/{VERSION}/customers/{{cid}}/offlineUserDataJobs/{{job}}:run")
    def run_job(self, request: Request) -> Response:
        denied = self._customer(request)
        if denied:
            return denied
        job = self.jobs.get(request.params["job"])
        if job is None:
            return rpc_error(404, "NOT_FOUND", f"Job {request.params['job']} not found.")
        problems = validate("RunOfflineUserDataJobRequest", request.json() or {}, bound=("resource_name",))
        if problems:
            return self._invalid(problems)
        if job["status"] != "PENDING":
            return rpc_error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                [
                    ads_error(
                        "offlineUserDataJobError", "JOB_ALREADY_STARTED", "The job has already been run."
                    )
                ],
            )
        members: set[tuple[str, str]] = self.user_lists[job["list_id"]]["members"]
        for op in job["operations"]:
            if "removeAll" in op:
                members.clear()
                continue
            kind = "create" if "create" in op else "remove"
            for identifier in op[kind]["userIdentifiers"]:
                for key in HASHED_FIELDS:
                    if key in identifier:
                        (members.add if kind == "create" else members.discard)((key, identifier[key]))
        job["status"] = "SUCCESS"
        return Response(200, {"name": f"customers/{self.customer_id}/operations/{next(self._ids)}"})
