"""Mapped mode's options: how the customer's own tables hold contacts and companies, their
multi-valued fields and extra columns, and the values configuration writes into columns
(``backend.options.contacts`` / ``companies``; links, users, activities and tasks are in
:mod:`backends.sql.related_options`).

Everything here is data, validated when the configuration loads (an error names its YAML path,
``backend.options.contacts.on_create.display_name: ...``) and interpreted by small pieces of
the driver: :mod:`backends.sql.values` (values written into columns),
:mod:`backends.sql.id_strategies`, :mod:`backends.sql.mapped` (record tables),
:mod:`backends.sql.children` (child tables), :mod:`backends.sql.crm_engagement` (activities
and tasks). ``docs/sql.md`` documents each option, with the five presets in ``examples/crms/``
as examples.
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from backends.base import DriverOptions

from .id_strategies import check_id_strategy

__all__ = [
    "ChildLink",
    "ChildTable",
    "Condition",
    "DatabaseValue",
    "ExtensionTable",
    "Lookup",
    "MappedTable",
    "Scalar",
    "ValueSpec",
    "Values",
    "Where",
    "check_identifiers",
    "identifier",
    "template_fields",
]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
#: A template placeholder: a field name, or a dotted path into an activity's metadata.
_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")

Scalar = str | int | float | bool | None


def identifier(value: str) -> str:
    """``value`` when it is a plain SQL identifier (letters, digits, ``_``, ``$``; ≤ 63)."""
    # Identifiers are quoted by SQLAlchemy anyway; refusing odd characters keeps error messages
    # and index names predictable across the three databases.
    if not _IDENT.match(value) or len(value) > 63:
        raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, _; ≤63 chars)")
    return value


def check_identifiers(names: Any) -> Any:
    for name in names:
        identifier(name)
    return names


def template_fields(template: str) -> list[str]:
    """The placeholders of ``template`` in order; raises ``ValueError`` for anything but
    ``{name}`` placeholders (no format specs, conversions or indexing: a template is data)."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc} (write a literal brace as {{{{)") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not _PLACEHOLDER.match(name):
            raise ValueError(
                f"template {template!r}: placeholder {{{name}}} must be a plain field name"
            )
        names.append(name)
    return names


# -- values written into columns ------------------------------------------------------------


class DatabaseValue(DriverOptions):
    """A constant read from the database once, when the backend opens (an id the CRM's own
    data defines: Odoo's ``ir_model`` row of ``res.partner``, CiviCRM's default location
    type): ``SELECT <column> FROM <table> WHERE <where>`` must find exactly one value."""

    table: str
    db_schema: str | None = Field(default=None, alias="schema")
    column: str
    #: Column → value; ``column.key`` compares a key of a JSON column (Odoo's translated
    #: names: ``name.en_US: To-Do``).
    where: dict[str, Scalar] = Field(default_factory=dict)

    model_config = DriverOptions.model_config | {"populate_by_name": True}

    _names = field_validator("table", "db_schema", "column")(
        lambda v: None if v is None else identifier(v)
    )

    @field_validator("where")
    @classmethod
    def _check_where(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for name in value:
            identifier(name.split(".", 1)[0])
        return value


class ValueSpec(DriverOptions):
    """A value the driver writes into a column. In YAML a bare scalar is a constant
    (``deleted: 0``); a mapping has exactly one source:

    * ``const``: a constant (``{const: null}`` writes NULL);
    * ``now: true``: the current time (UTC);
    * ``field: <name>``: a field of the record (or attribute of the activity / task; a
      column set by an earlier value of the same list; ``company.name`` for the linked
      company's field in an association's values);
    * ``template: "{first_name} {last_name}"``: text built from fields; a list is tried in
      order and the first whose placeholders all have values wins;
    * ``generate: <id strategy>``: a new id (``uuid``, ``uuid_hex``, ``espo``,
      ``module:function``);
    * ``lookup: {table, column, where}``: a constant read from the database when the backend
      opens (an id the CRM's own data defines);

    and optionally ``map`` (look the value up: ``{EMAIL: 3, LINKEDIN: 58}``; keys are
    compared as text, booleans as ``true`` / ``false``), ``default`` (a value spec used when
    the result is empty or not in ``map``), ``case`` (``upper`` / ``lower``) and ``escape``
    (``html``: a template's values are HTML-escaped, line breaks become ``<br>``; ``json``:
    escaped for a JSON string).
    """

    const: Scalar = None
    now: bool = False
    field: str | None = None
    template: str | list[str] | None = None
    generate: str | None = None
    lookup: DatabaseValue | None = None
    map: dict[str, Scalar] | None = None
    default: ValueSpec | None = None
    case: Literal["upper", "lower"] | None = None
    escape: Literal["html", "json"] | None = None

    _resolved: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _scalar_is_const(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if isinstance(data.get("map"), dict):
                data = {**data, "map": {_map_key(k): v for k, v in data["map"].items()}}
            return data
        if isinstance(data, (list, tuple)):
            raise ValueError("a value is a scalar or a mapping ({const|now|field|template})")
        return {"const": data}

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return None
        alternatives = [value] if isinstance(value, str) else value
        if not alternatives:
            raise ValueError("a template list needs at least one template")
        for alternative in alternatives:
            template_fields(alternative)
        return value

    @field_validator("generate")
    @classmethod
    def _check_generate(cls, value: str | None) -> str | None:
        return None if value is None else check_id_strategy(value, generated=True)

    @model_validator(mode="after")
    def _one_source(self) -> ValueSpec:
        given = [
            name
            for name, present in (
                ("const", "const" in self.model_fields_set),
                ("now", self.now),
                ("field", self.field is not None),
                ("template", self.template is not None),
                ("generate", self.generate is not None),
                ("lookup", self.lookup is not None),
            )
            if present
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of const, now, field, template, generate, lookup"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.map is not None and given[0] not in ("field", "template"):
            raise ValueError("'map' applies to a field or a template")
        if self.escape is not None and given[0] != "template":
            raise ValueError("'escape' applies to a template")
        return self

    def fields(self) -> set[str]:
        """The fields this value reads (to know when an update must recompute it)."""
        names: set[str] = set()
        if self.field is not None:
            names.add(self.field)
        if self.template is not None:
            for alternative in [self.template] if isinstance(self.template, str) else self.template:
                names.update(template_fields(alternative))
        if self.default is not None:
            names |= self.default.fields()
        return names

    def lookups(self) -> list[ValueSpec]:
        """This spec and its defaults that read a database constant."""
        found = [self] if self.lookup is not None else []
        return found + (self.default.lookups() if self.default is not None else [])


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


Values = dict[str, ValueSpec]


def _check_columns(values: Values) -> Values:
    check_identifiers(values)
    return values


# -- row conditions --------------------------------------------------------------------------


class Condition(DriverOptions):
    """One column's condition in ``where``. In YAML: a scalar (``deleted: 0``: equals), ``null``
    (IS NULL), a list (IN), or ``{not: <scalar | null | list>}``."""

    equals: Scalar | list[Scalar] = None
    negate: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if set(data) != {"not"}:
                raise ValueError("a condition is a value, null, a list, or {not: ...}")
            inner = data["not"]
            if isinstance(inner, dict):
                raise ValueError("{not: ...} takes a value, null or a list")
            return {"equals": inner, "negate": True}
        return {"equals": data}

    @field_validator("equals")
    @classmethod
    def _non_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list matches nothing")
        return value

    @property
    def insert_value(self) -> Scalar:
        """The value a new row takes so that it satisfies this condition (``None``: none
        needed or none known, e.g. ``IS NULL`` or a list)."""
        if self.negate or isinstance(self.equals, list):
            return None
        return self.equals


Where = dict[str, Condition]


# -- lookups ---------------------------------------------------------------------------------


class Lookup(DriverOptions):
    """How sync compares a match key with the stored values of a column it did not write.

    * ``column``: compare this column instead (an indexed, normalised copy the CRM keeps:
      SuiteCRM ``email_address_caps``, Odoo ``email_normalized``, EspoCRM ``lower``);
    * ``stored``: how values are stored there. ``as_is`` (default): any case, compared
      case-insensitively (a case-insensitive collation compares directly through the
      column's index; otherwise ``lower(column)``, which needs an expression index);
      ``lower`` / ``upper``: stored in that case, compared directly;
    * ``create_index``: let the adapter create the index this comparison needs
      (``lower(column)`` on PostgreSQL and SQLite, the column on MariaDB) when it migrates
      (``serve``, ``check --migrate``). Off by default: the CRM's schema is left alone.
    """

    column: str | None = None
    stored: Literal["as_is", "lower", "upper"] = "as_is"
    create_index: bool = False

    @field_validator("column")
    @classmethod
    def _check_column(cls, value: str | None) -> str | None:
        return None if value is None else identifier(value)


# -- child tables ----------------------------------------------------------------------------


class ChildLink(DriverOptions):
    """A link table between records and shared value rows (SuiteCRM ``email_addr_bean_rel``,
    EspoCRM ``entity_email_address``)."""

    table: str
    primary_key: str | None = "id"
    id_strategy: str = "database"
    #: Column holding the record's primary key (``bean_id``, ``entity_id``).
    record_column: str
    #: Column holding the value row's primary key (``email_address_id``).
    child_column: str
    #: Values of the row that holds the record's primary value (``primary_address: 1``).
    primary: dict[str, Scalar] = Field(default_factory=dict)
    where: Where = Field(default_factory=dict)
    on_create: Values = Field(default_factory=dict)
    on_update: Values = Field(default_factory=dict)
    #: Values that retire a link row instead of deleting it (``deleted: 1``).
    on_delete: Values = Field(default_factory=dict)

    _names = field_validator("table", "primary_key", "record_column", "child_column")(
        lambda v: None if v is None else identifier(v)
    )
    _cols = field_validator("primary", "where", "on_create", "on_update", "on_delete")(
        check_identifiers
    )
    _ids = field_validator("id_strategy")(lambda v: check_id_strategy(v))


class ChildTable(DriverOptions):
    """A multi-valued field kept in a table of its own (e-mail addresses, phone numbers).

    Either the child row points at the record (``record_column``: CiviCRM ``civicrm_email``
    by ``contact_id``, with ``primary: {is_primary: 1}``), or value rows are shared and a
    ``link`` table joins them to records (SuiteCRM, EspoCRM). The record's field holds its
    primary value; sync by that field searches every row of the child table.
    """

    table: str
    primary_key: str | None = "id"
    id_strategy: str = "database"
    #: The column holding the value.
    column: str
    #: Direct child: the column pointing at the record.
    record_column: str | None = None
    #: Direct child: values of the primary row (``is_primary: 1``).
    primary: dict[str, Scalar] = Field(default_factory=dict)
    link: ChildLink | None = None
    where: Where = Field(default_factory=dict)
    on_create: Values = Field(default_factory=dict)
    on_update: Values = Field(default_factory=dict)
    #: Direct child: values that retire a row instead of deleting it.
    on_delete: Values = Field(default_factory=dict)
    lookup: Lookup = Field(default_factory=Lookup)
    #: ``false``: the rows are made by something else (EspoCRM's ``account_contact`` row made
    #: by linking the contact to its account, whose ``role`` is the contact's title): a value
    #: is written into the record's existing rows only, never a new row, and kept in the
    #: extra-fields side table too (``extra_fields: side_table``) until a row exists.
    create_rows: bool = True

    _names = field_validator("table", "primary_key", "column", "record_column")(
        lambda v: None if v is None else identifier(v)
    )
    _cols = field_validator("primary", "where", "on_create", "on_update", "on_delete")(
        check_identifiers
    )
    _ids = field_validator("id_strategy")(lambda v: check_id_strategy(v))

    @model_validator(mode="after")
    def _one_way(self) -> ChildTable:
        if (self.record_column is None) == (self.link is None):
            raise ValueError("set exactly one of 'record_column' (a direct child) or 'link'")
        if self.link is not None and self.primary_key is None:
            raise ValueError("shared value rows linked through 'link' need a 'primary_key'")
        if self.link is not None and self.primary:
            raise ValueError("with a 'link' table, 'primary' belongs to the link")
        if self.link is not None and not self.create_rows:
            raise ValueError("'create_rows: false' applies to a direct child (record_column)")
        return self


class ExtensionTable(DriverOptions):
    """A one-to-one table of extra columns (SuiteCRM ``contacts_cstm`` keyed by ``id_c``,
    CiviCRM's ``civicrm_value_*`` keyed by ``entity_id``): a field whose name is one of its
    columns is stored there."""

    table: str
    #: The column holding the record's primary key.
    key: str

    _names = field_validator("table", "key")(identifier)


# -- records ---------------------------------------------------------------------------------


class MappedTable(DriverOptions):
    """A customer table holding contacts or companies (mapped mode)."""

    table: str
    #: The database schema of the table (PostgreSQL schema, MySQL database); default: the
    #: connection's.
    db_schema: str | None = Field(default=None, alias="schema")
    #: The primary-key column; its value (as a string) is the record's ``crmId``.
    primary_key: str = "id"
    #: ``database``: the database makes the id (identity, sequence, autoincrement, a default);
    #: ``uuid``: a UUID (as text, or a native ``uuid`` column); ``uuid_hex``: 32 hex digits;
    #: ``espo``: EspoCRM's 17-character ids; ``module:function``: your generator.
    id_strategy: str = "database"
    #: Optional JSON (or text) column receiving fields that have no column of their own.
    json_column: str | None = None
    #: Where fields without a column go: ``reject`` (that record's ``invalid_record``),
    #: ``json_column``, or ``side_table`` (the adapter's ``<prefix>extra_fields``). Default:
    #: ``json_column`` when one is set, else ``reject``.
    extra_fields: Literal["reject", "json_column", "side_table"] | None = None
    #: Rows the adapter sees: soft-deleted, archived or other-type rows are invisible (sync
    #: never returns them, updates never touch them). Equality conditions are also written
    #: into new rows.
    where: Where = Field(default_factory=dict)
    #: Values written into new rows (a record's own field wins over them).
    on_create: Values = Field(default_factory=dict)
    #: Values written whenever a row changes (timestamps; templates are recomputed when a
    #: field they read changes).
    on_update: Values = Field(default_factory=dict)
    #: Multi-valued fields in tables of their own, by field name.
    children: dict[str, ChildTable] = Field(default_factory=dict)
    #: A one-to-one table of extra columns.
    extension: ExtensionTable | None = None
    #: How sync compares match keys with stored values, by field name.
    lookups: dict[str, Lookup] = Field(default_factory=dict)

    model_config = DriverOptions.model_config | {"populate_by_name": True}

    _names = field_validator("table", "db_schema", "primary_key", "json_column")(
        lambda v: None if v is None else identifier(v)
    )
    _cols = field_validator("where", "on_create", "on_update", "lookups")(check_identifiers)
    _ids = field_validator("id_strategy")(lambda v: check_id_strategy(v))

    @model_validator(mode="after")
    def _extras(self) -> MappedTable:
        if self.extra_fields is None:
            object.__setattr__(
                self, "extra_fields", "json_column" if self.json_column else "reject"
            )
        elif self.extra_fields == "json_column" and self.json_column is None:
            raise ValueError("extra_fields 'json_column' needs 'json_column'")
        for name in self.children:
            if name in self.on_create or name in self.on_update:
                raise ValueError(f"field {name!r} is a child table; it has no column to set")
        return self

    def insert_values(self) -> Values:
        """``on_create`` plus the equality conditions of ``where`` it does not set."""
        values = dict(self.on_create)
        for column, condition in self.where.items():
            if column not in values and condition.insert_value is not None:
                values[column] = ValueSpec(const=condition.insert_value)
        return values
