"""The manifest's expression set: each function, constants, spreading, and errors at load."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backends.rest.expr import Template, slug
from backends.rest.paths import MISSING, check_path, get_path, set_path


def evaluate(source: object, **ctx: object) -> object:
    return Template(source).evaluate(ctx, {"kinds": {"EMAIL": "email", "true": "Done"}})


@pytest.mark.parametrize(
    ("source", "ctx", "expected"),
    [
        ("=f.email | lower", {"f": {"email": "Ada@ACME.com"}}, "ada@acme.com"),
        ("=f.email | upper", {"f": {"email": "a@b"}}, "A@B"),
        ('=f.last | default("(unknown)")', {"f": {}}, "(unknown)"),
        ('=f.last | default("(unknown)")', {"f": {"last": None}}, "(unknown)"),
        ('=f.last | default("(unknown)")', {"f": {"last": "Lovelace"}}, "Lovelace"),
        ('=[f.a, f.b, f.c] | join(" ")', {"f": {"a": "Ada", "c": "L"}}, "Ada L"),
        ("=f.tag | array", {"f": {"tag": "x"}}, ["x"]),
        ("=f.tag | array", {"f": {"tag": ["x", "y"]}}, ["x", "y"]),
        ("=f.tag | array", {"f": {"tag": None}}, []),
        ("=f.items | compact", {"f": {"items": ["a", None, "", "b"]}}, ["a", "b"]),
        ("=f.items | first", {"f": {"items": ["a", "b"]}}, "a"),
        ("=f.site | url", {"f": {"site": "acme.com"}}, "https://acme.com"),
        ("=f.site | url", {"f": {"site": "http://acme.com"}}, "http://acme.com"),
        ("=f.site | domain", {"f": {"site": "https://WWW.Acme.com/about"}}, "acme.com"),
        ("=when | date", {"when": "2026-01-31T23:30:00Z"}, "2026-01-31"),
        (
            "=when | datetime",
            {"when": datetime(2026, 1, 31, 9, tzinfo=UTC)},
            "2026-01-31T09:00:00Z",
        ),
        ("=t | map(kinds)", {"t": "EMAIL"}, "email"),
        ('=t | map(kinds, "note")', {"t": "LINKEDIN"}, "note"),
        ("=t | map(kinds)", {"t": "LINKEDIN"}, "LINKEDIN"),
        ('=t | map(kinds, "note")', {}, MISSING),
        ("=done | map(kinds)", {"done": True}, "Done"),
        ("=s | truncate(3)", {"s": "abcdef"}, "abc"),
        ('=s | prefix("[") | suffix("]")', {"s": "k"}, "[k]"),
        ("=s | slug", {"s": "campaignOpens"}, "campaign_opens"),
        ("=n | int", {"n": "42"}, 42),
        ("=n | string", {"n": 42}, "42"),
        ('=e | object("value") | array', {"e": "a@b"}, [{"value": "a@b"}]),
        ("=a | when(b)", {"a": 1, "b": "x"}, 1),
        ('=a | otherwise("x")', {"a": None}, None),
        ('=a | otherwise("x")', {}, "x"),
        ("=when | time", {"when": "2026-01-31T09:05:00+01:00"}, "08:05"),
        (
            '=e | object("person_id") | with("primary", true) | array',
            {"e": 5},
            [{"person_id": 5, "primary": True}],
        ),
        ("=a | unless(b)", {"a": 1, "b": "x"}, MISSING),
        ("==literal", {}, "=literal"),
        ("plain", {}, "plain"),
        (7, {}, 7),
        ("=null", {}, None),
    ],
)
def test_functions(source: str, ctx: dict[str, object], expected: object) -> None:
    assert evaluate(source, **ctx) == expected


def test_absent_values_leave_mappings_and_lists_and_spread_yields_to_explicit_keys() -> None:
    template = Template(
        {
            "*": "=fields",
            "name": '=fields.first | default("x")',
            "gone": "=fields.nothing",
            "list": ["=fields.first", "=fields.nothing"],
        }
    )
    out = template.evaluate({"fields": {"first": "Ada", "name": "overridden"}})
    assert out == {"first": "Ada", "name": "Ada", "list": ["Ada"]}
    assert template.roots() == {"fields"}


def test_join_of_nothing_is_absent_so_a_default_applies() -> None:
    assert evaluate('=[f.a, f.b] | join(" ") | default(f.email)', f={"email": "e"}) == "e"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("=fields.x | lowr", "unknown function 'lowr'"),
        ("=fields.x |", "expected 'a value'"),
        ("=a b", "unexpected 'b'"),
        ('=a | default("x", "y")', r"default takes 1 argument\(s\), got 2"),
        ("=a | join", r"join takes 1 argument\(s\), got 0"),
        ('="unterminated', "unexpected"),
    ],
)
def test_errors_are_found_when_the_template_is_compiled(source: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Template(source)


def test_roots_and_tables_are_known_before_anything_runs() -> None:
    template = Template({"k": "=type | map(kinds, vars.fallback)", "b": "=[a.x, b] | join(',')"})
    assert template.roots() == {"type", "vars", "a", "b"}
    assert template.tables() == {"kinds"}


def test_slug() -> None:
    assert slug("campaignEngagementStatus") == "campaign_engagement_status"
    assert slug("sim_ab12_custom_field") == "sim_ab12_custom_field"
    assert slug("9 lives") == "f_9_lives"


def test_paths() -> None:
    doc = {"data": {"items": [{"item": {"id": 1}}, {"item": {"id": 2}}, {}]}, "list": ["a"]}
    assert get_path(doc, "data.items.*.item.id") == [1, 2]
    assert get_path(doc, "list.0") == "a"
    assert get_path(doc, "list.3") is MISSING
    assert get_path(doc, "data.nothing") is MISSING
    assert get_path(doc, "") is doc
    target: dict[str, object] = {}
    set_path(target, "custom_fields.enginy_id", "x")
    assert target == {"custom_fields": {"enginy_id": "x"}}
    with pytest.raises(ValueError, match="segment"):
        check_path("data.it ems")
