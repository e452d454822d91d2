"""Sync by e-mail on CRM tables holding 1,000 and 100,000 contacts, through the presets.

    python bench/mapped.py [--crms suitecrm,civicrm,espocrm,odoo,twenty] [--rows 100000]
        [--repeat 21]

For each CRM it builds two copies of the CRM's tables (``tests/sql/crms/``: the CRM's own
schema and seed), bulk-loads 1,000 and ``--rows`` contacts into them the way the CRM stores
them (SuiteCRM: ``contacts`` + ``email_addresses`` + ``email_addr_bean_rel``; CiviCRM:
``civicrm_contact`` + ``civicrm_email``; EspoCRM: ``contact`` + ``email_address`` (with its
lower-cased copy) + ``entity_email_address``; Odoo: ``res_partner`` with ``email_normalized``;
Twenty: ``person``), serves the preset from ``examples/crms/`` on each (in process, through
the whole HTTP stack), and times ``POST /contacts/sync`` with 100 contacts none of which the
adapter wrote: 50 e-mails of stored contacts typed in another case, 50 unknown. Every one of
them misses the adapter's key table and is looked up in the CRM's own table: the path that
would scan the table without an index. The two sizes are timed alternately, ``--repeat``
rounds after a warm-up; medians are printed with the ratio (target: within 2x).

Twenty keeps no index ``lower("emailsPrimaryEmail")`` can use: its run sets
``lookups.emailsPrimaryEmail.create_index`` (the adapter makes the expression index when it
opens), as the preset's comment suggests; ``twenty-scan`` runs the preset as shipped, without
that index, to show what a lookup that reads the whole table costs.

Needs the MariaDB and PostgreSQL servers of the test suite (``ENGINY_TEST_MYSQL_URL``,
``ENGINY_TEST_POSTGRES_URL``). Prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.app import create_app  # noqa: E402
from adapter.config import Settings, load_settings  # noqa: E402
from tests.sql.crms import civicrm, espocrm, odoo, suitecrm, twenty  # noqa: E402

KEY = "bench-key-0123456789"


def _suitecrm(n: int) -> list[str]:
    seq = f"seq_1_to_{n}"
    return [
        f"""INSERT INTO contacts (id, first_name, last_name, deleted, date_entered, date_modified)
            SELECT CONCAT('bench-', LPAD(seq, 30, '0')), 'Bench', CONCAT('Person', seq), 0,
                   NOW(), NOW() FROM {seq}""",
        f"""INSERT INTO email_addresses (id, email_address, email_address_caps, deleted,
                   invalid_email, opt_out)
            SELECT CONCAT('bea-', LPAD(seq, 32, '0')), CONCAT('person', seq, '@bench.example'),
                   UPPER(CONCAT('person', seq, '@bench.example')), 0, 0, 0 FROM {seq}""",
        f"""INSERT INTO email_addr_bean_rel (id, email_address_id, bean_id, bean_module,
                   primary_address, reply_to_address, deleted)
            SELECT CONCAT('ber-', LPAD(seq, 32, '0')), CONCAT('bea-', LPAD(seq, 32, '0')),
                   CONCAT('bench-', LPAD(seq, 30, '0')), 'Contacts', 1, 0, 0 FROM {seq}""",
        "ANALYZE TABLE contacts, email_addresses, email_addr_bean_rel",
    ]


def _civicrm(n: int) -> list[str]:
    seq = f"seq_1_to_{n}"
    return [
        "SET @first = (SELECT COALESCE(MAX(id), 0) FROM civicrm_contact)",
        f"""INSERT INTO civicrm_contact (id, contact_type, first_name, last_name, display_name,
                   sort_name, is_deleted)
            SELECT @first + seq, 'Individual', 'Bench', CONCAT('Person', seq),
                   CONCAT('Bench Person', seq), CONCAT('Person', seq, ', Bench'), 0 FROM {seq}""",
        f"""INSERT INTO civicrm_email (contact_id, email, is_primary, location_type_id)
            SELECT @first + seq, CONCAT('person', seq, '@bench.example'), 1, 1 FROM {seq}""",
        "ANALYZE TABLE civicrm_contact, civicrm_email",
    ]


def _espocrm(n: int) -> list[str]:
    seq = f"seq_1_to_{n}"
    # Espo's ids are 17 characters (uniqid() and 4 hex digits) in VARCHAR(24) columns.
    return [
        f"""INSERT INTO contact (id, deleted, first_name, last_name, do_not_call, created_at,
                   modified_at)
            SELECT CONCAT('bc', LPAD(seq, 15, '0')), 0, 'Bench', CONCAT('Person', seq), 0,
                   NOW(), NOW() FROM {seq}""",
        f"""INSERT INTO email_address (id, name, deleted, `lower`, invalid, opt_out)
            SELECT CONCAT('be', LPAD(seq, 15, '0')), CONCAT('person', seq, '@bench.example'), 0,
                   CONCAT('person', seq, '@bench.example'), 0, 0 FROM {seq}""",
        f"""INSERT INTO entity_email_address (entity_id, email_address_id, entity_type,
                   `primary`, deleted)
            SELECT CONCAT('bc', LPAD(seq, 15, '0')), CONCAT('be', LPAD(seq, 15, '0')),
                   'Contact', 1, 0 FROM {seq}""",
        "ANALYZE TABLE contact, email_address, entity_email_address",
    ]


def _odoo(n: int) -> list[str]:
    return [
        f"""INSERT INTO res_partner (name, complete_name, email, email_normalized, active, type,
                   is_company, lang)
            SELECT 'Bench Person' || g, 'Bench Person' || g, 'person' || g || '@bench.example',
                   'person' || g || '@bench.example', true, 'contact', false, 'en_US'
            FROM generate_series(1, {n}) AS g""",
        "ANALYZE res_partner",
    ]


def _twenty(schema: str) -> Callable[[int], list[str]]:
    def statements(n: int) -> list[str]:
        return [
            f"""INSERT INTO "{schema}"."person" ("nameFirstName", "nameLastName",
                       "emailsPrimaryEmail")
                SELECT 'Bench', 'Person' || g, 'person' || g || '@bench.example'
                FROM generate_series(1, {n}) AS g""",
            f'ANALYZE "{schema}"."person"',
        ]

    return statements


#: The statements that load ``n`` contacts into each CRM's tables (Twenty's need its schema).
_STATEMENTS: dict[str, Callable[[int], list[str]]] = {
    "suitecrm": _suitecrm,
    "civicrm": _civicrm,
    "espocrm": _espocrm,
    "odoo": _odoo,
}

CRMS: dict[str, Any] = {
    "suitecrm": suitecrm.database,
    "civicrm": civicrm.database,
    "espocrm": espocrm.database,
    "odoo": odoo.database,
    "twenty": twenty.database,
    "twenty-scan": twenty.database,
}


def settings_for(name: str, crm: Any) -> Settings:
    environ = {"DATABASE_URL": crm.url, "ENGINY_ADAPTER_API_KEY": KEY}
    if name == "twenty-scan":
        environ["TWENTY_SCHEMA"] = crm.schema
        return load_settings(ROOT / "examples" / "crms" / "twenty.yaml", environ=environ)
    if name != "twenty":
        return load_settings(ROOT / "examples" / "crms" / f"{name}.yaml", environ=environ)
    environ["TWENTY_SCHEMA"] = crm.schema
    raw = yaml.safe_load((ROOT / "examples" / "crms" / "twenty.yaml").read_text())
    raw["backend"]["options"]["contacts"]["lookups"] = {
        "emailsPrimaryEmail": {"create_index": True}
    }
    path = ROOT / "bench" / ".twenty-bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    try:
        return load_settings(path, environ=environ)
    finally:
        path.unlink()


@asynccontextmanager
async def loaded(name: str, rows: int) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh copy of the CRM holding ``rows`` more contacts, served by its preset."""
    async with CRMS[name]() as crm:
        statements = (
            _twenty(crm.schema)(rows) if name.startswith("twenty") else _STATEMENTS[name](rows)
        )
        async with crm.engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
        app = create_app(settings_for(name, crm))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app),
                base_url="http://adapter",
                headers={"X-API-Key": KEY},
                timeout=120,
            ) as client,
        ):
            yield client


def sync_body(rows: int, round_: int) -> dict[str, Any]:
    """100 contacts the adapter never wrote: 50 stored (another case), 50 unknown."""
    pick = random.Random(round_).sample(range(1, min(rows, 1000) + 1), 50)
    known = [
        {"externalId": f"b{round_}-{i}", "email": f"Person{n}@Bench.Example"}
        for i, n in enumerate(pick)
    ]
    unknown = [
        {"externalId": f"u{round_}-{i}", "email": f"nobody{round_}.{i}@bench.example"}
        for i in range(50)
    ]
    return {"contacts": known + unknown}


async def timed(client: httpx.AsyncClient, rows: int, round_: int) -> float:
    started = time.perf_counter()
    answer = await client.post("/contacts/sync", json=sync_body(rows, round_))
    elapsed = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    found = len(answer.json()["results"])
    if found != 50:
        raise SystemExit(f"expected 50 matches, got {found}: {answer.text[:300]}")
    return elapsed


async def run(crms: list[str], rows: int, repeat: int) -> list[tuple[str, float, float]]:
    out = []
    for name in crms:
        async with AsyncExitStack() as stack:
            small = await stack.enter_async_context(loaded(name, 1000))
            large = await stack.enter_async_context(loaded(name, rows))
            for warm in range(3):
                await timed(small, 1000, -1 - warm)
                await timed(large, rows, -1 - warm)
            times: dict[str, list[float]] = {"small": [], "large": []}
            for round_ in range(repeat):
                order = [("small", small, 1000), ("large", large, rows)]
                if round_ % 2:
                    order.reverse()
                for label, client, size in order:
                    times[label].append(await timed(client, size, round_))
        out.append((name, statistics.median(times["small"]), statistics.median(times["large"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crms", default="suitecrm,civicrm,espocrm,odoo,twenty,twenty-scan")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    results = asyncio.run(run(args.crms.split(","), args.rows, args.repeat))
    print(f"| CRM (preset) | sync 100, 1,000 rows (ms) | {args.rows:,} rows (ms) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, small, large in results:
        print(f"| {name} | {small:.1f} | {large:.1f} | {large / small:.2f} |")


if __name__ == "__main__":
    main()
