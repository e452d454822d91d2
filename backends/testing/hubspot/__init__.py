"""A stateful fake of a stock HubSpot portal, for testing code that talks to HubSpot.

Ship-with-the-package test tool (like the conformance suite beside it): the HubSpot driver's
own tests run against it, and so can yours - a deployment's YAML, a third-party driver built on
:mod:`backends.http`, a bench. Nothing in the driver imports it.

In one process, serve it through an httpx transport::

    from backends.testing.hubspot import FakeHubSpot

    portal = FakeHubSpot(token="pat-test")
    driver = HubSpotBackend(HubSpotOptions(token="pat-test"), transport=portal.transport())

Across processes (several adapter replicas on one portal), serve it over loopback HTTP with
:mod:`backends.testing.hubspot.server` and point ``backend.options.base_url`` at it.

What it enforces, and where each rule comes from, is listed in :mod:`.portal`.
"""

from __future__ import annotations

from backends.testing.hubspot.portal import Call, FakeHubSpot

__all__ = ["Call", "FakeHubSpot"]
