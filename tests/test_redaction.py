"""One redact() for secrets (adapter/redaction.py): what it removes, from text and from JSON."""

from __future__ import annotations

from pydantic import SecretStr

from adapter.config import Settings
from adapter.redaction import mask_words, option_locations, option_secrets, redact


def test_configured_secrets_are_removed_wherever_they_appear() -> None:
    text = "key k-0123456789 in k-0123456789-suffix and k-01234"
    assert redact(text, ["k-0123456789", "k-01234"]) == "key *** in ***-suffix and ***"


def test_a_secret_containing_another_is_removed_whole() -> None:
    assert redact("abcdef", ["abc", "abcdef"], mask="#") == "#"


def test_url_credentials_are_masked_up_to_the_last_at() -> None:
    text = "open mysql://root:p@ss@db:3306/x and https://u:t@api.example.com/v1; plain a@b.c"
    assert redact(text) == (
        "open mysql://***@db:3306/x and https://***@api.example.com/v1; plain a@b.c"
    )


def test_json_values_under_secret_names_and_given_names_are_masked() -> None:
    body = {
        "apiKey": "x",
        "nested": [{"accessToken": "t", "Password": "p", "client_secret": "s"}],
        "X-Enginy-Sig": "h",
        "name": "Ada",
        "count": 3,
        "notes": "my key is k-0123456789",
        "k-0123456789": "as a field name",
    }
    assert redact(body, ["k-0123456789"], names=["x-enginy-sig"], mask="[x]") == {
        "apiKey": "[x]",
        "nested": [{"accessToken": "[x]", "Password": "[x]", "client_secret": "[x]"}],
        "X-Enginy-Sig": "[x]",
        "name": "Ada",
        "count": 3,
        "notes": "my key is [x]",
        "[x]": "as a field name",
    }
    assert body["apiKey"] == "x"  # a copy: the input is left as it was


def test_option_secrets_are_secret_named_strings_and_secret_strs() -> None:
    options = {
        "url": "postgresql+asyncpg://db/crm",
        "password": "hunter22",
        "auth": {"api_token": "tok-123456", "user": "admin"},
        "headers": [{"name": "X-Key", "value": "v"}],
        "secret": SecretStr("s3cr3t"),
        "pass": "no",  # too short to be worth masking everywhere
    }
    assert sorted(option_secrets(options)) == ["hunter22", "s3cr3t", "tok-123456"]


def test_settings_collect_every_configured_secret() -> None:
    settings = Settings.model_validate(
        {
            "auth": {"keys": ["api-key-1", "api-key-2"]},
            "ui": {"password": "dash-pass"},
            "backend": {"driver": "x:Y", "options": {"token": "drv-token", "host": "db"}},
        }
    )
    assert settings.secret_values() == ("api-key-1", "api-key-2", "dash-pass", "drv-token")
    line = "api-key-2 / dash-pass / drv-token / db"
    assert redact(line, settings.secret_values()) == "*** / *** / *** / db"


def test_option_locations_name_where_the_backend_lives() -> None:
    options = {
        "url": "postgresql+asyncpg://crm:pw@db.internal:5432/crmprod?ssl=require",
        "users": {"table": "crm_users"},
        "replica": {"host": "replica.internal", "database": "crmprod"},
    }
    assert list(dict.fromkeys(option_locations(options))) == [
        "db.internal",
        "crm",
        "crmprod",
        "replica.internal",
    ]
    assert list(option_locations({"url": "sqlite+aiosqlite:////var/lib/enginy/crm.db"})) == [
        "/var/lib/enginy/crm.db",
        "crm.db",
    ]
    assert list(option_locations({"url": "sqlite+aiosqlite:///:memory:"})) == []
    settings = Settings.model_validate(
        {"backend": {"driver": "sql", "options": {"url": "mysql://root@127.0.0.1/app"}}}
    )
    assert settings.location_values() == ("127.0.0.1", "root", "app")


def test_mask_words_masks_whole_names_only() -> None:
    text = "CONSTRAINT `crm_contacts.extra` failed for `crmprod`.`crm_contacts` (crm@db.internal)"
    assert mask_words(text, ["crm", "crmprod", "db.internal"]) == (
        "CONSTRAINT `crm_contacts.extra` failed for `***`.`crm_contacts` (***@***)"
    )
    assert mask_words("nothing to hide", []) == "nothing to hide"
