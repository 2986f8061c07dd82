"""Destinations, one module each. To add one: write the module, add a line to REGISTRY, add its
emulator to reverse_etl/emulators and its case to tests/destinations (see docs/destinations.md)."""

from __future__ import annotations

import importlib

from reverse_etl.destinations.base import ConfigError, Destination

# name -> "module:Class"; imported on first use so the CLI starts fast.
REGISTRY: dict[str, str] = {
    "braze": "reverse_etl.destinations.braze:BrazeUsers",
    "klaviyo": "reverse_etl.destinations.klaviyo:KlaviyoProfiles",
    "hubspot": "reverse_etl.destinations.hubspot:HubSpotContacts",
    "webhook": "reverse_etl.destinations.webhook:WebhookDestination",
    "files": "reverse_etl.destinations.files:FilesDestination",
    "google_ads": "reverse_etl.destinations.google_ads:GoogleAdsCustomerMatch",
    "meta": "reverse_etl.destinations.meta:MetaCustomAudiences",
    "mailchimp": "reverse_etl.destinations.mailchimp:MailchimpMembers",
    "salesforce": "reverse_etl.destinations.salesforce:SalesforceUpsert",
    "tiktok": "reverse_etl.destinations.tiktok:TikTokAudiences",
    "linkedin": "reverse_etl.destinations.linkedin:LinkedInAudiences",
    "iterable": "reverse_etl.destinations.iterable:IterableUsers",
    "customerio": "reverse_etl.destinations.customerio:CustomerIoPeople",
    "slack": "reverse_etl.destinations.slack:SlackWebhook",
}


def destination_class(name: str, *, source: str = "<settings>") -> type[Destination]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"{source}: unknown destination '{name}'; choose one of {', '.join(sorted(REGISTRY))} "
            "(`cdp destination list` shows them all)"
        ) from None
    module_name, class_name = target.split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)
