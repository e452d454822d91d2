"""What ``enginy-adapter check`` finds wrong with a mapped configuration, before Enginy meets it.

Everything is read from the reflected schema; nothing is written. Problems (the service would
fail or lose data) and notes (it works, but an administrator should know) are sentences that
name the table and column:

* a table or column the configuration names does not exist;
* an id strategy the key column cannot take (a 36-character UUID into EspoCRM's
  ``varchar(17)``, a UUID into an integer key, ``database`` on a key nothing fills);
* a ``NOT NULL`` column without a default that neither a field nor a configured value fills,
  in a record table, a child or link table, a link table of associations, an activity or task
  table;
* a field mapped onto a column that cannot hold it (text into a number, a column of a type the
  adapter cannot fill), a constant that does not fit its column (``status: Done`` for an enum
  without it);
* (MariaDB/MySQL) the adapter's side tables in another collation than the mapped keys: joins
  between them fail with "Illegal mix of collations";
* (note) a sync lookup that no index serves: it scans the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from backends.base import Entity

from .coerce import NUMBER_TYPES, ValueRejected, coerce, column_is_text, unsupported
from .id_strategies import ID_LENGTHS
from .mapped import NUMBER_FIELDS
from .mapped_options import ChildTable, MappedTable, Scalar, ValueSpec, template_fields
from .options import SQLOptions
from .related_options import AssociationsMapping, EngagementTable
from .values import options_specs

__all__ = ["Reflected", "SchemaReport", "check_mapping", "configured_tables"]

TableKey = tuple[str | None, str]
#: Enginy fields holding an id of the CRM's (users' ids: integers, uuids or text).
ID_FIELDS = frozenset({"ownerId"})


@dataclass
class Reflected:
    """The reflected tables, their indexes, and the database's default collation."""

    tables: dict[TableKey, sa.Table] = field(default_factory=dict)
    #: ``(schema, table) → [(first column or None, expression text or None)]``.
    indexes: dict[TableKey, list[tuple[str | None, str | None]]] = field(default_factory=dict)
    default_collation: str | None = None
    dialect: str = "sqlite"

    def get(self, name: str, schema: str | None = None) -> sa.Table | None:
        return self.tables.get((schema, name))


@dataclass
class SchemaReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def configured_tables(options: SQLOptions) -> set[TableKey]:
    """Every customer table the configuration names."""
    o = options
    names: set[TableKey] = set()
    for config in (o.contacts, o.companies):
        if config is None:
            continue
        names.add((config.db_schema, config.table))
        for child in config.children.values():
            names.add((config.db_schema, child.table))
            if child.link is not None:
                names.add((config.db_schema, child.link.table))
        if config.extension is not None:
            names.add((config.db_schema, config.extension.table))
    if o.associations is not None and o.associations.table is not None:
        names.add((o.associations.db_schema, o.associations.table))
    if o.users is not None:
        names.add((o.users.db_schema, o.users.table))
        if o.users.join is not None:
            names.add((o.users.join.db_schema, o.users.join.table))
    for spec in options_specs(o):
        if spec.lookup is not None:
            names.add((spec.lookup.db_schema, spec.lookup.table))
    for engagement in (o.activities, o.tasks):
        if engagement is not None:
            names.add((engagement.db_schema, engagement.table))
            if engagement.targets is not None:
                names.add((engagement.targets.db_schema, engagement.targets.table))
    return names


def _label(table: sa.Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


class _Checker:
    def __init__(self, options: SQLOptions, reflected: Reflected) -> None:
        self.options = options
        self.reflected = reflected
        self.report = SchemaReport()

    def problem(self, text: str) -> None:
        self.report.problems.append(text)

    def table(self, what: str, name: str, schema: str | None) -> sa.Table | None:
        table = self.reflected.get(name, schema)
        if table is None:
            where = f"{schema}.{name}" if schema else name
            self.problem(f"{what}: table '{where}' does not exist")
        return table

    def columns(self, what: str, table: sa.Table, names: Iterable[str | None]) -> bool:
        ok = True
        for name in names:
            if name is not None and name not in table.c:
                self.problem(f"{what}: table '{_label(table)}' has no column '{name}'")
                ok = False
        return ok

    def constants(self, what: str, table: sa.Table, values: Mapping[str, Scalar]) -> None:
        for name, value in values.items():
            if name in table.c and value is not None:
                try:
                    coerce(table.c[name], value)
                except ValueRejected as exc:
                    self.problem(f"{what}: configured value for {_label(table)}: {exc}")

    def specs(self, what: str, table: sa.Table, specs: Mapping[str, ValueSpec]) -> None:
        self.columns(what, table, specs)
        self.constants(
            what,
            table,
            {c: s.const for c, s in specs.items() if "const" in s.model_fields_set},
        )

    def key(self, what: str, column: sa.Column[Any], strategy: str) -> None:
        """Whether ``strategy`` can fill key ``column``."""
        where = f"'{_label(column.table)}.{column.name}'"
        type_ = column.type
        if strategy == "database":
            filled = column.server_default is not None or column.identity is not None
            if isinstance(type_, sa.Integer):
                filled = filled or column.autoincrement is not False
            if not filled:
                self.problem(
                    f"{what}: id_strategy 'database' but {where} ({type_}) has no identity, "
                    "sequence, auto-increment or default: choose an id_strategy that makes ids"
                )
            return
        if isinstance(type_, sa.Uuid):
            if strategy != "uuid":
                self.problem(f"{what}: {where} is a uuid column; use id_strategy 'uuid'")
            return
        if not isinstance(type_, sa.String):
            self.problem(
                f"{what}: id_strategy '{strategy}' makes text ids but {where} is {type_}; "
                "use id_strategy 'database'"
            )
            return
        made = ID_LENGTHS.get(strategy)
        if made is not None and type_.length is not None and made > type_.length:
            self.problem(
                f"{what}: id_strategy '{strategy}' makes {made}-character ids but {where} holds "
                f"{type_.length}"
                + (" (EspoCRM ids: use id_strategy 'espo')" if type_.length == 17 else "")
            )

    def not_null(self, what: str, table: sa.Table, filled: Iterable[str | None], hint: str) -> None:
        have = {f for f in filled if f}
        for column in table.c:
            if (
                column.name not in have
                and not column.nullable
                and column.server_default is None
                and column.default is None
                and column.computed is None
                and column.identity is None
                and column.autoincrement is not True
                and not (
                    column.primary_key
                    and isinstance(column.type, sa.Integer)
                    and column.autoincrement == "auto"
                    and len(table.primary_key.columns) == 1
                )
            ):
                self.problem(
                    f"{what}: column '{_label(table)}.{column.name}' is NOT NULL without a "
                    f"default and {hint}"
                )

    # -- record tables ---------------------------------------------------------------------

    def record_table(
        self, entity: Entity, config: MappedTable, field_map: Mapping[str, str] | None
    ) -> None:
        what = entity.plural
        table = self.table(what, config.table, config.db_schema)
        if table is None:
            return
        self.columns(what, table, [config.primary_key, config.json_column])
        if config.primary_key in table.c:
            self.key(what, table.c[config.primary_key], config.id_strategy)
        if config.json_column is not None and config.json_column in table.c:
            column = table.c[config.json_column]
            if not isinstance(column.type, (sa.String, sa.JSON)):
                self.problem(
                    f"{what}: json_column '{config.json_column}' is {column.type}; it needs a "
                    "JSON or text type"
                )
        self.columns(what, table, config.where)
        self.constants(what, table, {c: w.insert_value for c, w in config.where.items()})
        self.specs(what, table, config.on_create)
        self.specs(what, table, config.on_update)
        extension = None
        if config.extension is not None:
            extension = self.table(what, config.extension.table, config.db_schema)
            if extension is not None:
                self.columns(what, extension, [config.extension.key])
        for name, child in config.children.items():
            self.child(what, name, child, config.db_schema)
        mapped: set[str] = set()
        for enginy, backend in (field_map or {}).items():
            if backend in (config.primary_key, config.json_column):
                self.problem(f"{what}: field '{enginy}' is mapped onto reserved column '{backend}'")
            elif backend in table.c:
                mapped.add(backend)
                self.field_column(what, enginy, table.c[backend])
            elif backend in config.children:
                continue
            elif extension is not None and backend in extension.c:
                self.field_column(what, enginy, extension.c[backend])
            else:
                where = {
                    "json_column": "goes to the JSON column",
                    "side_table": "goes to the adapter's extra_fields table",
                }.get(config.extra_fields or "", "has nowhere to go")
                self.problem(
                    f"{what}: field '{enginy}' is mapped to column '{backend}', which table "
                    f"'{_label(table)}' lacks (the value {where})"
                )
        if field_map is not None:
            filled = {config.primary_key, *mapped, *config.insert_values()}
            if config.id_strategy == "database":
                filled.discard(config.primary_key)
            self.not_null(
                what,
                table,
                filled,
                "no field or configured value fills it: records lacking it will be rejected",
            )

    def field_column(self, what: str, enginy: str, column: sa.Column[Any]) -> None:
        where = f"'{_label(column.table)}.{column.name}'"
        reason = unsupported(column)
        if reason is not None:
            self.problem(f"{what}: field '{enginy}' is mapped to {where}, {reason}")
            return
        text_like = isinstance(column.type, (sa.String, sa.JSON))
        numeric = isinstance(column.type, (sa.Integer, *NUMBER_TYPES))
        if enginy in ID_FIELDS and (text_like or isinstance(column.type, (sa.Integer, sa.Uuid))):
            return  # an id of the CRM's own users: its key's type
        if enginy not in NUMBER_FIELDS and not text_like:
            self.problem(f"{what}: field '{enginy}' is text but column {where} is {column.type}")
        elif enginy in NUMBER_FIELDS and not (numeric or text_like):
            self.problem(
                f"{what}: field '{enginy}' is a number but column {where} is {column.type}"
            )

    def child(self, what: str, name: str, child: ChildTable, schema: str | None) -> None:
        label = f"{what}.children.{name}"
        table = self.table(label, child.table, schema)
        if table is None:
            return
        self.columns(
            label,
            table,
            [
                child.primary_key,
                child.column,
                child.record_column,
                child.lookup.column,
                *child.primary,
                *child.where,
                *child.on_delete,
            ],
        )
        self.specs(label, table, child.on_create)
        self.specs(label, table, child.on_update)
        self.constants(label, table, child.primary)
        if child.primary_key is not None and child.primary_key in table.c:
            self.key(label, table.c[child.primary_key], child.id_strategy)
        filled = {
            child.column,
            child.record_column,
            *child.primary,
            *child.on_create,
            *(c for c, w in child.where.items() if w.insert_value is not None),
        }
        if child.primary_key and child.id_strategy != "database":
            filled.add(child.primary_key)
        if child.create_rows:
            self.not_null(label, table, filled, "no configured value fills it")
        link = child.link
        if link is None:
            return
        link_table = self.table(f"{label}.link", link.table, schema)
        if link_table is None:
            return
        self.columns(
            f"{label}.link",
            link_table,
            [
                link.primary_key,
                link.record_column,
                link.child_column,
                *link.primary,
                *link.where,
                *link.on_delete,
            ],
        )
        self.specs(f"{label}.link", link_table, link.on_create)
        self.constants(f"{label}.link", link_table, link.primary)
        if link.primary_key is not None and link.primary_key in link_table.c:
            self.key(f"{label}.link", link_table.c[link.primary_key], link.id_strategy)
        filled = {
            link.record_column,
            link.child_column,
            *link.primary,
            *link.on_create,
            *(c for c, w in link.where.items() if w.insert_value is not None),
        }
        if link.primary_key and link.id_strategy != "database":
            filled.add(link.primary_key)
        self.not_null(f"{label}.link", link_table, filled, "no configured value fills it")

    # -- links, users, activities, tasks ----------------------------------------------------

    def associations(self, assoc: AssociationsMapping) -> None:
        if assoc.table is not None:
            table = self.table("associations", assoc.table, assoc.db_schema)
            if table is not None:
                self.columns(
                    "associations",
                    table,
                    [assoc.contact_column, assoc.company_column, assoc.primary_key, *assoc.where],
                )
                self.specs("associations", table, assoc.on_create)
                if assoc.primary_key is not None and assoc.primary_key in table.c:
                    self.key("associations", table.c[assoc.primary_key], assoc.id_strategy)
                filled = {assoc.contact_column, assoc.company_column, *assoc.insert_values()}
                if assoc.primary_key and assoc.id_strategy != "database":
                    filled.add(assoc.primary_key)
                self.not_null(
                    "associations",
                    table,
                    filled,
                    "no configured value fills it (set primary_key / id_strategy / on_create)",
                )
        if assoc.fk_column is not None and self.options.contacts is not None:
            contacts = self.reflected.get(
                self.options.contacts.table, self.options.contacts.db_schema
            )
            if contacts is not None and assoc.fk_column not in contacts.c:
                self.problem(
                    f"associations: contacts table '{_label(contacts)}' has no column "
                    f"'{assoc.fk_column}'"
                )

    def engagement(self, what: str, config: EngagementTable) -> None:
        table = self.table(what, config.table, config.db_schema)
        if table is None:
            return
        parents = [c for p in config.parents for c in (p.type_column, p.id_column)]
        completion = [config.completed.column] if config.completed else []
        named = [config.contact_column, config.company_column, *config.columns.values()]
        self.columns(
            what, table, [config.primary_key, *named, *config.where, *parents, *completion]
        )
        self.specs(what, table, config.on_create)
        self.specs(what, table, config.on_update)
        if config.primary_key in table.c:
            self.key(what, table.c[config.primary_key], config.id_strategy)
        filled = {*named, *config.insert_values(), *parents, *completion}
        if config.id_strategy != "database":
            filled.add(config.primary_key)
        self.not_null(what, table, filled, "no configured value fills it")
        targets = config.targets
        if targets is None:
            return
        label = f"{what}.targets"
        target_table = self.table(label, targets.table, targets.db_schema)
        if target_table is None:
            return
        self.columns(label, target_table, [targets.primary_key, targets.owner_column])
        for row in targets.rows:
            self.specs(label, target_table, row)
            filled = {targets.owner_column, *row}
            if targets.primary_key and targets.id_strategy != "database":
                filled.add(targets.primary_key)
            self.not_null(label, target_table, filled, "a target row does not fill it")
        if targets.primary_key and targets.primary_key in target_table.c:
            self.key(label, target_table.c[targets.primary_key], targets.id_strategy)

    def users(self) -> None:
        users = self.options.users
        if users is None:
            return
        table = self.table("users", users.table, users.db_schema)
        if table is None:
            return
        joined = None
        if users.join is not None:
            joined = self.table("users.join", users.join.table, users.join.db_schema)
            if joined is not None:
                self.columns("users.join", joined, [users.join.key, *users.join.where])
            self.columns("users", table, [users.join.column])
        names = [users.id_column, *users.where]
        if users.name is None:
            names.append(users.name_column)
        alternatives = [users.name] if isinstance(users.name, str) else users.name or []
        qualified = {f for a in alternatives for f in template_fields(a)}
        if users.email_column:
            qualified.add(users.email_column)
        for name in qualified:
            owner, _, column = name.rpartition(".")
            if owner and joined is not None and owner == joined.name:
                self.columns("users.join", joined, [column])
            else:
                self.columns("users", table, [column if not owner else name])


def check_mapping(
    options: SQLOptions,
    reflected: Reflected,
    field_maps: Mapping[Entity, Mapping[str, str]] | None = None,
) -> list[str]:
    """Problems of the configuration against the reflected tables (empty: all good)."""
    return check_report(options, reflected, field_maps).problems


def check_report(
    options: SQLOptions,
    reflected: Reflected,
    field_maps: Mapping[Entity, Mapping[str, str]] | None = None,
) -> SchemaReport:
    """:func:`check_mapping`'s problems and the notes (see the module docstring)."""
    checker = _Checker(options, reflected)
    maps = field_maps or {}
    for entity, config in ((Entity.CONTACT, options.contacts), (Entity.COMPANY, options.companies)):
        if config is not None:
            fm = maps.get(entity) if field_maps is not None else None
            checker.record_table(entity, config, fm)
    if options.associations is not None:
        checker.associations(options.associations)
    checker.users()
    if options.activities is not None:
        checker.engagement("activities", options.activities)
    if options.tasks is not None:
        checker.engagement("tasks", options.tasks)
    checker.report.problems += _collation_clash(options, reflected)
    return checker.report


def key_collation(column: sa.Column[Any]) -> str | None:
    """MariaDB/MySQL: the collation of a text key (the column's, else its table's)."""
    chosen = getattr(column.type, "collation", None) or column.table.kwargs.get("mysql_collate")
    return str(chosen) if chosen else None


def _collation_clash(options: SQLOptions, reflected: Reflected) -> list[str]:
    """Contacts' and companies' text keys in two collations: the adapter's tables, which hold
    both as text, can match only one (joins with the other would fail)."""
    if reflected.dialect != "mysql" or options.collation is not None:
        return []
    found = {
        f"{_label(c.table)}.{c.name}": key_collation(c)
        for c in text_key_columns(options, reflected)
    }
    collations = {c for c in found.values() if c}
    if len(collations) < 2:
        return []
    listed = ", ".join(f"{k} ({v})" for k, v in sorted(found.items()))
    return [
        f"collations: the keys {listed} differ; the adapter's tables can take one collation "
        "only (set 'collation' to the one its joins should use)"
    ]


def text_key_columns(options: SQLOptions, reflected: Reflected) -> list[sa.Column[Any]]:
    """The mapped record keys that side tables hold as text (their collation must match)."""
    keys = []
    for config in (options.contacts, options.companies):
        if config is None:
            continue
        table = reflected.get(config.table, config.db_schema)
        if table is not None and config.primary_key in table.c:
            column = table.c[config.primary_key]
            if column_is_text(column):
                keys.append(column)
    return keys
