"""Companies HubSpot makes itself from contact e-mail domains, found before search sees them.

With the portal setting "Create and associate companies with contacts" (HubSpot knowledge base,
object-settings/automatically-create-and-associate-companies-with-contacts), a contact created
with ``ana@acme.io`` gets a company ``acme.io`` made by HubSpot and associated with it as its
primary company. That company holds none of the driver's keys, and search shows it only once
the index catches up, so a company sync or create for ``acme.io`` in the next seconds would
miss it and Enginy would get a second company.

The driver remembers, for ten minutes, the contacts it created or re-addressed, per e-mail
domain (:mod:`.recent`: in the process, and in Redis for every replica when
``rate_limit.redis_url`` is set). A company lookup by domain that keys and search
left unanswered, for a domain such a contact has, reads those contacts' company associations
(v4 ``batch/read``: HubSpot's primary store, no lag) and the companies themselves
(``batch/read``), and keeps those whose ``domain`` normalises to the wanted value: two calls,
only in that case.

What remains: without Redis the memory is per process (a replica that did not create the
contact cannot know it); and HubSpot makes the company in the background, so a company asked
for in the moment between the contact's creation and HubSpot's association is still missed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from backends.hubspot.core import chunks
from backends.hubspot.keys import normalise_for_key
from backends.hubspot.search import SearchMixin, oldest_first

__all__ = ["AutoCompaniesMixin"]

#: Inputs per v4 association ``batch/read`` (HubSpot changelog, February 2025).
ASSOCIATION_READ_LIMIT = 1_000


class AutoCompaniesMixin(SearchMixin):
    """See the module docstring."""

    async def remember_contacts(self, contacts: Iterable[tuple[str, object]]) -> None:
        """Note contacts (``(crm id, email)``) that HubSpot may make a company for."""
        await self.recent.remember(
            (crm_id, email) for crm_id, email in contacts if isinstance(email, str) and crm_id
        )

    async def companies_from_emails(
        self, kind: str, values: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """``{value: oldest company}`` among the companies associated with recently created
        contacts whose e-mail domain normalises (``kind``: ``domain`` or
        ``domain_any_extension``) to a wanted value."""
        wanted = set(values)
        contacts = sorted(await self.recent.recall(kind, sorted(wanted)))
        if not contacts:
            return {}
        company_ids: set[str] = set()
        for part in chunks(contacts, ASSOCIATION_READ_LIMIT):
            response = await self.client.request(
                "POST",
                self.client.paths.assoc_batch("contacts", "companies", "read"),
                json={"inputs": [{"id": crm_id} for crm_id in part]},
                accept=(404,),
            )
            for row in response.json_dict().get("results") or []:
                for target in (row or {}).get("to") or []:
                    company_ids.add(str(target.get("toObjectId")))
        if not company_ids:
            return {}
        names = sorted(set(properties) | {"domain"})
        companies = await self.batch_read("companies", sorted(company_ids), names)
        out: dict[str, dict[str, Any]] = {}
        for obj in oldest_first(companies):
            value = normalise_for_key(kind, (obj.get("properties") or {}).get("domain"))
            if value is not None and value in wanted and value not in out:
                out[value] = obj
        return out
