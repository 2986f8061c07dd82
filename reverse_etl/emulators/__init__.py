"""Loopback HTTP servers that follow each vendor's contract, so connectors are tested over real HTTP
with no internet. One module per vendor; REGISTRY maps destination name -> "module:Class"."""

from __future__ import annotations

import importlib

from reverse_etl.emulators.base import Emulator, FaultConfig

REGISTRY: dict[str, str] = {
    "braze": "reverse_etl.emulators.braze:BrazeEmulator",
    "klaviyo": "reverse_etl.emulators.klaviyo:KlaviyoEmulator",
    "hubspot": "reverse_etl.emulators.hubspot:HubSpotEmulator",
    "webhook": "reverse_etl.emulators.webhook:WebhookEmulator",
    "google_ads": "reverse_etl.emulators.google_ads:GoogleAdsEmulator",
    "meta": "reverse_etl.emulators.meta:MetaEmulator",
    "mailchimp": "reverse_etl.emulators.mailchimp:MailchimpEmulator",
    "salesforce": "reverse_etl.emulators.salesforce:SalesforceEmulator",
    "tiktok": "reverse_etl.emulators.tiktok:TikTokEmulator",
    "linkedin": "reverse_etl.emulators.linkedin:LinkedInEmulator",
    "iterable": "reverse_etl.emulators.iterable:IterableEmulator",
    "customerio": "reverse_etl.emulators.customerio:CustomerIoEmulator",
    "slack": "reverse_etl.emulators.slack:SlackEmulator",
}


def emulator_class(name: str) -> type[Emulator]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no emulator for '{name}'; emulators exist for {', '.join(sorted(REGISTRY))}"
        ) from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = ["Emulator", "FaultConfig", "REGISTRY", "emulator_class"]
