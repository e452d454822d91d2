"""Mapped mode's options around the record tables: where contact → company links go, the
users table, and the CRM's own activity and task tables (``backend.options.associations``,
``users``, ``activities``, ``tasks``). Data only, validated when the configuration loads; see
:mod:`backends.sql.mapped_options` for the record tables and the values written into columns.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from backends.base import DriverOptions

from .id_strategies import check_id_strategy
from .mapped_options import (
    Scalar,
    Values,
    ValueSpec,
    Where,
    check_identifiers,
    identifier,
    template_fields,
)

__all__ = [
    "ACTIVITY_ATTRIBUTES",
    "TASK_ATTRIBUTES",
    "AssociationsMapping",
    "Completion",
    "EngagementTable",
    "ParentColumns",
    "TargetsTable",
    "UsersJoin",
    "UsersTable",
]


class AssociationsMapping(DriverOptions):
    """Where contact → company links go in mapped mode: a link table, a foreign-key column of
    the contacts table (a contact then has one company; the last link wins), or both (EspoCRM
    keeps ``contact.account_id`` and ``account_contact``)."""

    table: str | None = None
    db_schema: str | None = Field(default=None, alias="schema")
    contact_column: str = "contact_id"
    company_column: str = "company_id"
    #: The link table's own key, made by ``id_strategy`` (SuiteCRM ``accounts_contacts.id``).
    primary_key: str | None = None
    id_strategy: str = "database"
    #: Links the adapter sees (``deleted: 0``); equality conditions are written into new rows.
    where: Where = Field(default_factory=dict)
    on_create: Values = Field(default_factory=dict)
    #: Column of the contacts table holding the company's primary key.
    fk_column: str | None = None
    #: Values written into the contact's row when it is linked (``fk_column``), reading the
    #: contact's fields and the company's as ``company.<field>`` (``company.id`` is its key):
    #: Odoo's ``commercial_partner_id``, CiviCRM's cached employer ``organization_name``.
    #: ``on_create`` values of a link table read ``contact.<field>`` and ``company.<field>``.
    on_link: Values = Field(default_factory=dict)

    model_config = DriverOptions.model_config | {"populate_by_name": True}

    _names = field_validator(
        "table", "db_schema", "contact_column", "company_column", "primary_key", "fk_column"
    )(lambda v: None if v is None else identifier(v))
    _cols = field_validator("where", "on_create", "on_link")(check_identifiers)
    _ids = field_validator("id_strategy")(lambda v: check_id_strategy(v))

    @model_validator(mode="after")
    def _somewhere(self) -> AssociationsMapping:
        if self.table is None and self.fk_column is None:
            raise ValueError("set 'table' (a link table), 'fk_column', or both")
        if self.table is None and (self.where or self.on_create or self.primary_key):
            raise ValueError("'where', 'on_create' and 'primary_key' describe a link 'table'")
        if self.fk_column is None and self.on_link:
            raise ValueError("'on_link' values go into the contact's row: set 'fk_column'")
        return self

    def insert_values(self) -> Values:
        values = dict(self.on_create)
        for column, condition in self.where.items():
            if column not in values and condition.insert_value is not None:
                values[column] = ValueSpec(const=condition.insert_value)
        return values


class UsersJoin(DriverOptions):
    """A table joined to the users table (``users.<column> = <table>.<key>``) whose columns
    ``name`` / ``email_column`` may name as ``<table>.<column>`` (Odoo: the user's name is on
    ``res_partner``; CiviCRM: ``civicrm_uf_match`` to ``civicrm_contact``)."""

    table: str
    db_schema: str | None = Field(default=None, alias="schema")
    column: str
    key: str = "id"
    #: Conditions on the joined table (``is_deleted: 0``).
    where: Where = Field(default_factory=dict)

    model_config = DriverOptions.model_config | {"populate_by_name": True}

    _names = field_validator("table", "db_schema", "column", "key")(
        lambda v: None if v is None else identifier(v)
    )
    _cols = field_validator("where")(check_identifiers)


class UsersTable(DriverOptions):
    """A table listing the CRM's users (``GET /users``)."""

    table: str
    db_schema: str | None = Field(default=None, alias="schema")
    id_column: str = "id"
    name_column: str = "name"
    #: A template over the columns instead of ``name_column`` (``"{first_name}
    #: {last_name}"``); ``joined.column`` names a column of ``join``.
    name: str | list[str] | None = None
    email_column: str | None = "email"
    #: Users listed (``deleted: 0``, ``status: Active``); on the users table.
    where: Where = Field(default_factory=dict)
    join: UsersJoin | None = None

    model_config = DriverOptions.model_config | {"populate_by_name": True}

    _names = field_validator("table", "db_schema", "id_column", "name_column")(
        lambda v: None if v is None else identifier(v)
    )
    _cols = field_validator("where")(check_identifiers)

    @field_validator("email_column")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        if value is not None:
            for part in value.split(".", 1):
                identifier(part)
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | list[str] | None) -> str | list[str] | None:
        for alternative in [value] if isinstance(value, str) else value or []:
            template_fields(alternative)
        return value


# -- activities and tasks --------------------------------------------------------------------


class ParentColumns(DriverOptions):
    """A polymorphic parent: a type column and an id column (SuiteCRM / EspoCRM
    ``parent_type`` + ``parent_id``, Odoo ``model`` + ``res_id``): the type written for a
    contact parent (``contact``) and for a company parent (``company``); leave one out for a
    parent of one kind only (EspoCRM's ``super_parent`` is the account). ``prefer``: which
    one is the parent when both are given."""

    type_column: str
    id_column: str
    contact: str | None = None
    company: str | None = None
    prefer: Literal["contact", "company"] = "contact"

    _names = field_validator("type_column", "id_column")(identifier)

    @model_validator(mode="after")
    def _some_kind(self) -> ParentColumns:
        if self.contact is None and self.company is None:
            raise ValueError("set 'contact', 'company' or both (the type written for each)")
        return self


class TargetsTable(DriverOptions):
    """A table listing the records an activity or task concerns (CiviCRM
    ``civicrm_activity_contact``, Twenty ``noteTarget`` / ``taskTarget``): ``rows`` are the
    rows written for each activity (task), as values over its attributes; a row whose values
    read an attribute that is empty (no company given) is left out.

    ``rows: [{contact_id: {field: contact_id}, record_type_id: 3}]``
    """

    table: str
    db_schema: str | None = Field(default=None, alias="schema")
    primary_key: str | None = None
    id_strategy: str = "database"
    #: Column holding the activity's (task's) primary key.
    owner_column: str
    rows: list[Values]

    model_config = DriverOptions.model_config | {"populate_by_name": True}

    _names = field_validator("table", "db_schema", "primary_key", "owner_column")(
        lambda v: None if v is None else identifier(v)
    )
    _ids = field_validator("id_strategy")(lambda v: check_id_strategy(v))

    @field_validator("rows")
    @classmethod
    def _check_rows(cls, value: list[Values]) -> list[Values]:
        if not value:
            raise ValueError("list at least one row")
        for row in value:
            check_identifiers(row)
        return value


#: Attributes of activities and tasks that ``columns`` may map.
ACTIVITY_ATTRIBUTES = frozenset(
    {"type", "direction", "subject", "body", "owner_id", "occurred_at", "contact_id", "company_id"}
)
TASK_ATTRIBUTES = frozenset(
    {
        "subject",
        "description",
        "type",
        "owner_id",
        "due_date",
        "completed_at",
        "contact_id",
        "company_id",
    }
)


class Completion(DriverOptions):
    """How a task's completion is stored: ``column`` equals ``done`` (one value or a list:
    any of them reads as completed) when completed, ``open`` otherwise."""

    column: str
    done: Scalar | list[Scalar]
    open: Scalar

    _names = field_validator("column")(identifier)

    @property
    def done_value(self) -> Scalar:
        return self.done[0] if isinstance(self.done, list) else self.done

    def is_done(self, stored: Any) -> bool:
        wanted = self.done if isinstance(self.done, list) else [self.done]
        return any(_same(stored, w) for w in wanted)


def _same(stored: Any, wanted: Scalar) -> bool:
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return stored is not None and bool(stored) == bool(wanted)
    return stored == wanted or str(stored) == str(wanted)


class EngagementTable(DriverOptions):
    """Activities or tasks written into the CRM's own table, linked to the contact (and
    company) so that the CRM's timeline and task lists show them. The adapter keeps its own
    copy too (the contract's answers, idempotency keys); the CRM row is what people see.
    """

    table: str
    db_schema: str | None = Field(default=None, alias="schema")
    primary_key: str = "id"
    id_strategy: str = "database"
    #: Attribute → column, written and (tasks) read back: ``{subject: name, body:
    #: description}``.
    columns: dict[str, str] = Field(default_factory=dict)
    #: Rows that exist for the adapter (``deleted: 0``); equality conditions go into new rows.
    where: Where = Field(default_factory=dict)
    #: Values of new rows; ``field`` and templates read the activity's (task's) attributes.
    on_create: Values = Field(default_factory=dict)
    #: Values written when a task changes (``date_modified: {now: true}``).
    on_update: Values = Field(default_factory=dict)
    #: Foreign-key columns to the contact and the company.
    contact_column: str | None = None
    company_column: str | None = None
    #: Polymorphic parent column pairs (one, or a list: EspoCRM's parent and super parent).
    parent: ParentColumns | list[ParentColumns] | None = None
    targets: TargetsTable | None = None
    #: Tasks: how completion is stored.
    completed: Completion | None = None
    #: Cut text longer than its column (a 200-character subject into SuiteCRM's
    #: ``tasks.name``, 50) instead of refusing the activity or task. The adapter's own copy
    #: keeps the whole text.
    truncate: bool = False

    model_config = DriverOptions.model_config | {"populate_by_name": True}

    _names = field_validator(
        "table", "db_schema", "primary_key", "contact_column", "company_column"
    )(lambda v: None if v is None else identifier(v))
    _cols = field_validator("where", "on_create", "on_update")(check_identifiers)
    _ids = field_validator("id_strategy")(lambda v: check_id_strategy(v))

    @field_validator("columns")
    @classmethod
    def _check_columns(cls, value: dict[str, str]) -> dict[str, str]:
        for column in value.values():
            identifier(column)
        return value

    @property
    def parents(self) -> list[ParentColumns]:
        if self.parent is None:
            return []
        return self.parent if isinstance(self.parent, list) else [self.parent]

    @model_validator(mode="after")
    def _linked(self) -> EngagementTable:
        if not (self.contact_column or self.company_column or self.parent or self.targets):
            raise ValueError(
                "link rows to their records: set contact_column, company_column, parent or "
                "targets (otherwise the CRM shows them nowhere)"
            )
        return self

    def insert_values(self) -> Values:
        values = dict(self.on_create)
        for column, condition in self.where.items():
            if column not in values and condition.insert_value is not None:
                values[column] = ValueSpec(const=condition.insert_value)
        return values

    def check_attributes(self, allowed: frozenset[str], what: str) -> None:
        unknown = sorted(set(self.columns) - allowed)
        if unknown:
            raise ValueError(
                f"{what}: unknown attribute(s) {', '.join(unknown)} in 'columns' "
                f"(known: {', '.join(sorted(allowed))})"
            )
