"""Contact → company associations through the v4 API (batched, idempotent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backends.base import AssociationPair, BackendError, InvalidRecord, ItemResult, NotFound
from backends.hubspot.core import HubSpotCore, chunks, is_record_id

__all__ = ["CONTACT_TO_COMPANY", "CONTACT_TO_COMPANY_PRIMARY", "AssociationsMixin"]

#: Association type ids (HUBSPOT_DEFINED): contact → company unlabelled / primary. 279 is the
#: plain association the "default" endpoints create; 1 is primary (often mislabelled).
CONTACT_TO_COMPANY = 279
CONTACT_TO_COMPANY_PRIMARY = 1


class AssociationsMixin(HubSpotCore):
    """``create_associations`` for :class:`backends.hubspot.HubSpotBackend`."""

    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        """Link contacts to companies with v4 *default* (unlabelled, type 279) associations —
        or primary (type 1) when ``primary_company`` is set — 100 pairs per call. Existing
        pairs succeed again (idempotent); a pair naming a missing record gets ``NotFound``."""
        results: list[ItemResult | None] = [None] * len(pairs)
        valid: list[int] = []
        for index, pair in enumerate(pairs):
            if not (is_record_id(pair.contact_id) and is_record_id(pair.company_id)):
                results[index] = ItemResult(error=self._missing_pair(pair, {}, {}))
            else:
                valid.append(index)
        with self.client.budget():
            unresolved: list[int] = []
            for part in chunks(list(dict.fromkeys(valid))):
                done = await self._associate(part, pairs)
                for index in part:
                    pair = pairs[index]
                    if (pair.contact_id, pair.company_id) in done:
                        results[index] = ItemResult(crm_id=pair.contact_id)
                    else:
                        unresolved.append(index)
            if unresolved:
                # The error items' shape is loosely specified: decide from the primary store
                # which side is missing.
                contacts = await self.batch_read(
                    "contacts", [pairs[i].contact_id for i in unresolved], ["hs_object_id"]
                )
                companies = await self.batch_read(
                    "companies", [pairs[i].company_id for i in unresolved], ["hs_object_id"]
                )
                have_contacts = {str(o["id"]): True for o in contacts}
                have_companies = {str(o["id"]): True for o in companies}
                for index in unresolved:
                    results[index] = ItemResult(
                        error=self._missing_pair(pairs[index], have_contacts, have_companies)
                    )
        return [r or ItemResult(error=InvalidRecord("no outcome")) for r in results]

    @staticmethod
    def _missing_pair(
        pair: AssociationPair, contacts: Mapping[str, bool], companies: Mapping[str, bool]
    ) -> BackendError:
        missing = []
        if pair.contact_id not in contacts:
            missing.append(f"contact {pair.contact_id}")
        if pair.company_id not in companies:
            missing.append(f"company {pair.company_id}")
        if not missing:
            return InvalidRecord(
                f"HubSpot refused to link contact {pair.contact_id} to company {pair.company_id}"
            )
        return NotFound(f"No such {' and '.join(missing)}")

    async def _associate(
        self, part: Sequence[int], pairs: Sequence[AssociationPair]
    ) -> set[tuple[str, str]]:
        inputs: list[dict[str, Any]] = [
            {"from": {"id": pairs[i].contact_id}, "to": {"id": pairs[i].company_id}} for i in part
        ]
        if self.options.primary_company:
            op = "create"
            for item in inputs:
                item["types"] = [
                    {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": CONTACT_TO_COMPANY_PRIMARY,
                    }
                ]
        else:
            op = "associate/default"
        response = await self.client.request(
            "POST",
            self.client.paths.assoc_batch("contacts", "companies", op),
            json={"inputs": inputs},
            accept=(400, 404),
        )
        done: set[tuple[str, str]] = set()
        for item in response.json_dict().get("results") or []:
            source = item.get("from") or {}
            target = item.get("to") or {}
            from_id = str(source.get("id") or item.get("fromObjectId") or "")
            to_id = target.get("id") if isinstance(target, dict) else None
            if to_id is None and isinstance(item.get("to"), list):  # batch/create labels shape
                to_id = (item["to"][0] or {}).get("toObjectId")
            to_id = to_id or item.get("toObjectId")
            done.add((from_id, str(to_id)))
        return done
