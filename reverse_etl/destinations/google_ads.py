"""Google Ads Customer Match through the OfflineUserDataJobService, over REST (gRPC transcoding).

API: ``POST /v25/customers/{cid}/offlineUserDataJobs:create`` (job-level list and consent), then
``.../offlineUserDataJobs/{id}:addOperations`` with ``enablePartialFailure`` and ``.../{id}:run``;
the list is created with ``userLists:mutate`` when it does not exist.
Batch limit: 100,000 identifiers per addOperations request and 20 per person; a batch here holds at
most 5,000 people so it stays under the request cap whatever each person carries.
Rate limit: operations per developer token per day and short-term per-account rates; a throttled call
answers HTTP 429 ``RESOURCE_EXHAUSTED`` whose GoogleAdsFailure carries ``quotaErrorDetails.retryDelay``.

Consent is job-level for Customer Match (operation-level consent is ignored), so a batch is split by
the records' ``consent_ad_user_data`` / ``consent_ad_personalization`` values and each group gets its
own job. Adds and removes never share a job (Google rejects the mix). Per-record failures come back in
``partialFailureError`` and are mapped to records by operation index.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from reverse_etl.destinations import hashing
from reverse_etl.destinations.base import (
    BatchRejected,
    CheckResult,
    ConfigError,
    Destination,
    Limits,
    PlannedRequest,
    Record,
    RecordResult,
    SettingSpec,
    SyncContext,
    TerminalError,
    TransientError,
)

DEFAULT_BASE_URL = "https://googleads.googleapis.com"
OPERATION_KIND = {"add": "create", "upsert": "create", "remove": "remove"}
CONSENT_FIELDS = (("consent_ad_user_data", "adUserData"), ("consent_ad_personalization", "adPersonalization"))
TERMINAL_CODES = {
    "INVALID_USER_LIST_ID",
    "INVALID_USER_LIST_TYPE",
    "INCOMPATIBLE_UPLOAD_KEY_TYPE",
    "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS",
    "USER_PERMISSION_DENIED",
    "DEVELOPER_TOKEN_INVALID",
    "DEVELOPER_TOKEN_NOT_APPROVED",
}


def _duration_seconds(value: Any) -> float | None:
    """google.protobuf.Duration in JSON: ``"30s"`` or ``"1.5s"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(value or ""))
    return float(match.group(1)) if match else None


def ads_errors(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The GoogleAdsFailure errors inside a google.rpc.Status."""
    errors: list[dict[str, Any]] = []
    for detail in status.get("details") or []:
        if isinstance(detail, dict):
            errors.extend(e for e in detail.get("errors") or [] if isinstance(e, dict))
    return errors


def error_code(error: Mapping[str, Any]) -> str:
    """``{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}}`` -> ``"RESOURCE_EXHAUSTED"``."""
    codes = error.get("errorCode") or {}
    return str(next(iter(codes.values()), "UNKNOWN")) if isinstance(codes, dict) else "UNKNOWN"


class GoogleAdsCustomerMatch(Destination):
    name = "google_ads"
    title = "Google Ads Customer Match"
    modes = ("audience", "mirror")
    # Customer lists need the person's consent to ad personalisation and to ad use of their data.
    consent_purposes = ("ads_personalization", "ad_user_data")
    limits = Limits(max_batch_size=5_000, requests_per_second=1.0, max_concurrency=1)
    identifier_fields = (
        "email",
        "phone",
        "first_name",
        "last_name",
        "country",
        "postal_code",
        "consent_ad_user_data",
        "consent_ad_personalization",
    )
    settings_spec = (
        SettingSpec("customer_id", help="Google Ads customer id, digits only (dashes are removed)"),
        SettingSpec("developer_token", secret=True, help="env var holding the API developer token"),
        SettingSpec(
            "access_token", secret=True, help="env var holding an OAuth2 access token (adwords scope)"
        ),
        SettingSpec("login_customer_id", required=False, help="manager account id when acting through one"),
        SettingSpec(
            "user_list_id", required=False, help="existing Customer Match list id; created when omitted"
        ),
        SettingSpec(
            "user_list_name", required=False, help="name of the list to find or create (default: sync name)"
        ),
        SettingSpec(
            "membership_life_span", required=False, default=10000, help="days; 10000 means no expiry"
        ),
        SettingSpec(
            "ad_user_data_consent",
            required=False,
            help="GRANTED or DENIED for records without a consent field",
        ),
        SettingSpec(
            "ad_personalization_consent", required=False, help="GRANTED or DENIED for records without one"
        ),
        SettingSpec(
            "default_phone_country", required=False, default="us", help="country of national phone numbers"
        ),
        SettingSpec("api_version", required=False, default="v25", help="Google Ads API version"),
        SettingSpec("base_url", required=False, default=DEFAULT_BASE_URL, help="API host"),
    )

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        super().__init__(settings, source=source)
        self.customer_id = re.sub(r"\D", "", str(self.settings["customer_id"]))
        if not self.customer_id:
            raise ConfigError(
                f"{source}: customer_id '{self.settings['customer_id']}' has no digits; use e.g. 123-456-7890"
            )
        for key in ("ad_user_data_consent", "ad_personalization_consent"):
            value = self.settings.get(key)
            if value is not None and str(value).upper() not in ("GRANTED", "DENIED"):
                raise ConfigError(f"{source}: setting '{key}' is '{value}'; use GRANTED or DENIED")

    # -- identifiers -----------------------------------------------------------------------------

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        if "userIdentifiers" in fields:  # already normalised
            return dict(fields), None
        identifiers: list[dict[str, Any]] = []
        email = hashing.normalise_email(fields.get("email"))
        if email:
            identifiers.append({"hashedEmail": hashing.hash_if_needed(email)})
        country = hashing.normalise_country(fields.get("country"))
        phone = hashing.normalise_phone_e164(
            fields.get("phone"), country or self.settings["default_phone_country"]
        )
        if phone:
            identifiers.append({"hashedPhoneNumber": hashing.sha256_hex(phone)})
        first = hashing.normalise_name_trim(fields.get("first_name"))
        last = hashing.normalise_name_trim(fields.get("last_name"))
        postal = hashing.normalise_zip(fields.get("postal_code"), country)
        if first and last and country and postal:
            identifiers.append(
                {
                    "addressInfo": {
                        "hashedFirstName": hashing.sha256_hex(first),
                        "hashedLastName": hashing.sha256_hex(last),
                        "countryCode": country.upper(),
                        "postalCode": postal,
                    }
                }
            )
        if not identifiers:
            return None, "no valid email, phone, or name + country + postal code"
        out: dict[str, Any] = {"userIdentifiers": identifiers}
        for field, key in CONSENT_FIELDS:
            flag = hashing.truthy(fields.get(field))
            if flag is not None:
                out[key] = "GRANTED" if flag else "DENIED"
        return out, None

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """Each user identifier (hashed email, hashed phone, hashed name and address) is held on its own."""
        keys: set[str] = set()
        for identifier in fields.get("userIdentifiers") or []:
            for kind, value in identifier.items():
                text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                keys.add(f"{kind}:{text}")
        return frozenset(keys)

    def _consent(self, fields: Mapping[str, Any]) -> dict[str, str]:
        defaults = {
            "adUserData": self.settings.get("ad_user_data_consent"),
            "adPersonalization": self.settings.get("ad_personalization_consent"),
        }
        consent = {}
        for key, default in defaults.items():
            value = fields.get(key) or default
            if value:
                consent[key] = str(value).upper()
        return consent

    def _groups(
        self, records: Sequence[Record]
    ) -> tuple[list[tuple[dict[str, str], list[tuple[Record, dict[str, Any]]]]], list[RecordResult]]:
        """Records by job-level consent, in first-seen order, plus those that cannot be sent."""
        groups: dict[
            tuple[tuple[str, str], ...], tuple[dict[str, str], list[tuple[Record, dict[str, Any]]]]
        ] = {}
        kept, rejected = self._normalised(records)
        for record, fields in kept:
            consent = self._consent(fields)
            groups.setdefault(tuple(sorted(consent.items())), (consent, []))[1].append((record, fields))
        return list(groups.values()), rejected

    # -- requests --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{str(self.settings['base_url']).rstrip('/')}/{self.settings['api_version']}/{path}"

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.settings['access_token']}",
            "developer-token": str(self.settings["developer_token"]),
            "Content-Type": "application/json",
        }
        if self.settings.get("login_customer_id"):
            headers["login-customer-id"] = re.sub(r"\D", "", str(self.settings["login_customer_id"]))
        return headers

    def _user_list(self, context: SyncContext, *, planning: bool = False) -> str:
        user_list = context.state.get("user_list")
        if not user_list and self.settings.get("user_list_id"):
            user_list = f"customers/{self.customer_id}/userLists/{self.settings['user_list_id']}"
        if user_list:
            return str(user_list)
        if planning:
            return f"customers/{self.customer_id}/userLists/{{user_list_id}}"
        raise TerminalError(
            f"{self.source}: no Customer Match list; prepare() was not run or list creation failed"
        )

    def create_job_request(
        self, consent: Mapping[str, str], context: SyncContext, *, planning: bool = False
    ) -> PlannedRequest:
        metadata: dict[str, Any] = {"userList": self._user_list(context, planning=planning)}
        if consent:
            metadata["consent"] = dict(consent)
        body = {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": metadata}}
        return (
            "POST",
            self._url(f"customers/{self.customer_id}/offlineUserDataJobs:create"),
            self._headers(),
            body,
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext, *, job: str | None = None
    ) -> PlannedRequest:
        """The addOperations request for these records, against ``job`` (a placeholder when planning)."""
        kind = OPERATION_KIND.get(operation)
        if kind is None:
            raise ValueError(f"Google Customer Match cannot '{operation}'; use add, upsert or remove")
        self._check_batch_size(records, "the {limit} per request kept here")
        operations = []
        for record in records:
            fields, _ = self.normalise(record.fields)
            if fields is not None:
                operations.append({kind: {"userIdentifiers": fields["userIdentifiers"]}})
        job = job or f"customers/{self.customer_id}/offlineUserDataJobs/{{job_id}}"
        body = {"operations": operations, "enablePartialFailure": True}
        return "POST", self._url(f"{job}:addOperations"), self._headers(), body

    def run_job_request(self, job: str) -> PlannedRequest:
        return "POST", self._url(f"{job}:run"), self._headers(), {}

    def plan_requests(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[PlannedRequest]:
        planned: list[PlannedRequest] = []
        groups, _ = self._groups(records)
        for n, (consent, members) in enumerate(groups):
            job = f"customers/{self.customer_id}/offlineUserDataJobs/{{job_id_{n + 1}}}"
            planned.append(self.create_job_request(consent, context, planning=True))
            planned.append(self.build_request(operation, [r for r, _ in members], context, job=job))
            planned.append(self.run_job_request(job))
        return planned

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        try:
            status = response.json().get("error") or {}
        except (ValueError, AttributeError):
            status = {}
        errors = ads_errors(status)
        codes = [error_code(e) for e in errors]
        message = (
            f"Google Ads {action}: HTTP {response.status_code} {status.get('status', '')}: "
            + "; ".join(f"{c}: {e.get('message', '')}" for c, e in zip(codes, errors, strict=True))
            if errors
            else f"Google Ads {action}: HTTP {response.status_code} {status.get('message') or response.text[:200]}"
        )
        if response.status_code == 429 or status.get("status") == "RESOURCE_EXHAUSTED":
            delays = [
                _duration_seconds(((e.get("details") or {}).get("quotaErrorDetails") or {}).get("retryDelay"))
                for e in errors
            ]
            known = [d for d in delays if d is not None]
            raise TransientError(
                message, retry_after=max(known) if known else None, http_status=response.status_code
            )
        if response.status_code >= 500 or status.get("status") in (
            "UNAVAILABLE",
            "DEADLINE_EXCEEDED",
            "INTERNAL",
        ):
            raise TransientError(message, http_status=response.status_code)
        if response.status_code in (401, 403, 404) or TERMINAL_CODES.intersection(codes):
            raise TerminalError(message, http_status=response.status_code)
        raise BatchRejected(message, http_status=response.status_code)

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            response = self.send_request(
                ("GET", self._url("customers:listAccessibleCustomers"), self._headers(), None)
            )
            self._raise_for_error(response, "check")
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        accessible = {name.rsplit("/", 1)[-1] for name in response.json().get("resourceNames", [])}
        wanted = re.sub(r"\D", "", str(self.settings.get("login_customer_id") or self.customer_id))
        if wanted not in accessible:
            return CheckResult(False, f"customer {wanted} is not accessible with these credentials")
        return CheckResult(True, f"customer {self.customer_id} accessible")

    def prepare(self, context: SyncContext) -> None:
        if self.settings.get("user_list_id"):
            context.state["user_list"] = self._user_list(context)
            return
        name = self.settings.get("user_list_name") or context.sync_name
        if context.state.get("user_list") and context.state.get("user_list_name") == name:
            return
        quoted = str(name).replace("\\", "\\\\").replace("'", "\\'")
        query = f"SELECT user_list.id, user_list.name FROM user_list WHERE user_list.name = '{quoted}'"
        response = self.send_request(
            (
                "POST",
                self._url(f"customers/{self.customer_id}/googleAds:search"),
                self._headers(),
                {"query": query},
            )
        )
        self._raise_for_error(response, "find user list")
        results = response.json().get("results") or []
        if results:
            context.state.update(user_list=results[0]["userList"]["resourceName"], user_list_name=name)
            return
        body = {
            "operations": [
                {
                    "create": {
                        "name": name,
                        "description": f"Synced from the warehouse by sync '{context.sync_name}'",
                        "membershipLifeSpan": str(self.settings["membership_life_span"]),
                        "crmBasedUserList": {"uploadKeyType": "CONTACT_INFO"},
                    }
                }
            ]
        }
        response = self.send_request(
            ("POST", self._url(f"customers/{self.customer_id}/userLists:mutate"), self._headers(), body)
        )
        self._raise_for_error(response, "create user list")
        context.state.update(user_list=response.json()["results"][0]["resourceName"], user_list_name=name)

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        groups, results = self._groups(records)
        if groups:
            self._user_list(context)
        for consent, members in groups:
            response = self.send_request(self.create_job_request(consent, context))
            self._raise_for_error(response, "create job")
            job = response.json()["resourceName"]
            group_records = [record for record, _ in members]
            response = self.send_request(self.build_request(operation, group_records, context, job=job))
            self._raise_for_error(response, f"{operation} operations")
            failed = self._failed_operations(response.json().get("partialFailureError"))
            response_run = self.send_request(self.run_job_request(job))
            self._raise_for_error(response_run, "run job")
            for index, record in enumerate(group_records):
                if index in failed:
                    results.append(RecordResult(record.key, ok=False, http_status=200, reason=failed[index]))
                else:
                    results.append(RecordResult(record.key, ok=True, http_status=200))
        return results

    @staticmethod
    def _failed_operations(status: Mapping[str, Any] | None) -> dict[int, str]:
        """Operation index -> reason, from a partialFailureError."""
        if not status:
            return {}
        failed: dict[int, str] = {}
        for error in ads_errors(status):
            path = ((error.get("location") or {}).get("fieldPathElements")) or []
            if not path or path[0].get("fieldName") != "operations" or "index" not in path[0]:
                raise BatchRejected(f"Google Ads partial failure without an operation index: {error}")
            failed.setdefault(int(path[0]["index"]), f"{error_code(error)}: {error.get('message', '')}")
        return failed
