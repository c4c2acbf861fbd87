"""A database password rotated under a warm container: the next invocation fetches the secret once.

The scanner runs as a login user of its role (tests/support/db_roles.py) in the session's real
PostgreSQL, its credentials in a moto secret. Between two invocations in one process (one warm
container) the user's password is changed and the secret updated, as Secrets Manager's rotation
does, and the server ends the user's sessions (what an idle timeout or a failover does; a session
opened before the change would otherwise carry on). The second invocation must succeed with
exactly one more GetSecretValue call, and no log line may hold either password.
"""

from __future__ import annotations

import logging

import pytest
import responses

from tests.support import db_roles
from tests.support import makenaide as mk

pytestmark = pytest.mark.postgres
SCANNER = "makenaide-scanner"


@pytest.fixture
def scanner_user(session_postgres, monkeypatch):
    from moto import mock_aws

    db_roles.fake_aws_environment(monkeypatch)
    for example in db_roles.PG_EXAMPLES:
        monkeypatch.syspath_prepend(str(mk.src(example)))
    url = session_postgres.database("secret_rotation")
    with mock_aws():
        db_roles.create_schema(url, monkeypatch)
        user = db_roles.LoginUser(url, "makenaide_scanner")
        monkeypatch.setenv("DB_SECRET_ARN", user.secret_arn)
        db_roles.new_container(SCANNER)
        yield user
        db_roles.new_container(SCANNER)
        user.drop()


def count_secret_fetches() -> list[str]:
    """GetSecretValue calls of the scanner's container, counted on its own (real boto3) client."""
    calls: list[str] = []
    client = db_roles.module(SCANNER, "handler").get_orchestrator().clients.get("secretsmanager")
    client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue",
        lambda params, **_: calls.append(params["SecretId"]),
    )
    return calls


def test_a_rotated_password_costs_the_next_invocation_one_secret_fetch(scanner_user, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    fetches = count_secret_fetches()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mk.MarketServer(mock, db_roles.module(SCANNER, "upbit").API_URL)
        first = db_roles.invoke(SCANNER, {"force": True})
        assert first["ok"] is True, first
        assert len(fetches) == 1

        scanner_user.rotate()
        assert scanner_user.end_sessions() >= 1  # the warm container's session is gone

        second = db_roles.invoke(SCANNER, {"force": True})

    assert second["ok"] is True, second
    assert len(fetches) == 2  # exactly one re-fetch, after the refusal
    assert "fetching the secret again" in caplog.text
    logged = caplog.text + "".join(capsys.readouterr())
    for password in scanner_user.passwords:
        assert password not in logged


def test_a_secret_left_unchanged_by_a_failed_rotation_fails_the_run(scanner_user, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    fetches = count_secret_fetches()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mk.MarketServer(mock, db_roles.module(SCANNER, "upbit").API_URL)
        assert db_roles.invoke(SCANNER, {"force": True})["ok"] is True
        secret = scanner_user._client.get_secret_value(SecretId=scanner_user.secret_arn)["SecretString"]
        scanner_user.rotate()
        scanner_user._client.put_secret_value(SecretId=scanner_user.secret_arn, SecretString=secret)
        scanner_user.end_sessions()

        second = db_roles.invoke_failing(SCANNER, {"force": True})

    assert second["ok"] is False
    assert "password authentication failed" in str(second)
    assert len(fetches) <= 1 + db_roles.module(SCANNER, "db").TRANSACTION_ATTEMPTS  # one per connect, no loop
    logged = caplog.text + "".join(capsys.readouterr())
    for password in scanner_user.passwords:
        assert password not in logged
