"""Pure settings logic: loopback detection, TLS choice, URL checks, token redaction in reprs."""

from __future__ import annotations

import pytest
from kit import TOKEN

from pytest_scriptum.client import (
    ClientSettings,
    GrpcClient,
    HttpClient,
    RetryPolicy,
    channel_credentials_for,
    connect,
    is_loopback,
    make_http_client,
)
from pytest_scriptum.client._settings import check_http_url, host_of_target


def settings(**overrides: object) -> ClientSettings:
    values: dict[str, object] = {
        "endpoint": "127.0.0.1:1",
        "http_url": "http://127.0.0.1:1",
        "org": "acme",
        "token": TOKEN,
    }
    values.update(overrides)
    return ClientSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("::ffff:127.0.0.1", True),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("scriptum.example.com", False),
        ("localhost.example.com", False),
        ("", False),
        ("::2", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("127.0.0.1:50051", "127.0.0.1"),
        ("[::1]:50051", "::1"),
        ("localhost:1", "localhost"),
        ("dns:///scriptum.example.com:443", "scriptum.example.com"),
        ("scriptum.example.com", "scriptum.example.com"),
        ("ipv4:127.0.0.1:80", "127.0.0.1"),
        ("unix:/tmp/scriptum.sock", "localhost"),
        ("::1", "::1"),
    ],
)
def test_host_of_target(target: str, host: str) -> None:
    assert host_of_target(target) == host


def test_tls_is_the_default_off_loopback() -> None:
    assert channel_credentials_for("scriptum.example.com:443", insecure=False) is not None
    assert channel_credentials_for("dns:///10.1.2.3:443", insecure=False) is not None


@pytest.mark.parametrize("target", ["127.0.0.1:50051", "[::1]:50051", "localhost:50051"])
def test_loopback_is_plaintext(target: str) -> None:
    assert channel_credentials_for(target, insecure=False) is None


def test_insecure_allows_plaintext_off_loopback() -> None:
    assert channel_credentials_for("scriptum.example.com:80", insecure=True) is None


def test_plain_http_to_a_remote_host_is_refused_without_insecure() -> None:
    with pytest.raises(ValueError, match=r"http://scriptum\.example\.com:8080.*--scriptum-insecure"):
        check_http_url("http://scriptum.example.com:8080", insecure=False)
    with pytest.raises(ValueError, match="--scriptum-insecure"):
        make_http_client(settings(http_url="http://scriptum.example.com:8080"))
    with pytest.raises(ValueError, match="--scriptum-insecure"):
        connect(settings(transport="http", http_url="http://10.0.0.7"))


def test_https_and_loopback_and_insecure_urls_are_accepted() -> None:
    assert check_http_url("https://scriptum.example.com", insecure=False).host == "scriptum.example.com"
    assert check_http_url("http://[::1]:8080", insecure=False).port == 8080
    assert check_http_url("http://scriptum.example.com", insecure=True).scheme == "http"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:8080", "http://", ""])
def test_malformed_urls_are_a_value_error_naming_the_url(url: str) -> None:
    with pytest.raises(ValueError, match="HTTP URL"):
        check_http_url(url, insecure=False)


def test_http_transport_without_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="--scriptum-http-url"):
        connect(settings(transport="http", http_url=None))


def test_make_http_client_sets_base_url_and_auth_headers() -> None:
    with make_http_client(settings(http_url="http://127.0.0.1:9/prefix")) as client:
        assert str(client.base_url) == "http://127.0.0.1:9/prefix/"
        assert client.headers["authorization"] == f"Bearer {TOKEN}"
        assert client.headers["x-organization-id"] == "acme"
        assert "x-organization-name" not in client.headers
        assert TOKEN not in repr(client.headers)
    with make_http_client(settings(http_url="http://127.0.0.1:9", org="", org_name="Acme")) as client:
        assert client.headers["x-organization-name"] == "Acme" and "x-organization-id" not in client.headers


def test_connect_picks_the_transport() -> None:
    grpc_client = connect(settings())
    http_client = connect(settings(transport="http"))
    try:
        assert isinstance(grpc_client, GrpcClient) and grpc_client.transport == "grpc"
        assert isinstance(http_client, HttpClient) and http_client.transport == "http"
    finally:
        grpc_client.close()
        http_client.close()


def test_token_is_absent_from_settings_and_client_reprs() -> None:
    s = settings()
    assert TOKEN not in repr(s) and TOKEN not in str(s)
    for client in (GrpcClient(s), HttpClient(s)):
        with client:
            assert TOKEN not in repr(client) and TOKEN not in str(client)
            assert "127.0.0.1:1" in repr(client)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("transport", "smtp", "transport"),
        ("call_timeout_s", 0.0, "call_timeout_s"),
        ("run_deadline_margin_s", -1.0, "run_deadline_margin_s"),
    ],
)
def test_bad_settings_are_value_errors_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings(**{field: value})


def test_clients_refuse_an_empty_token_but_not_an_empty_org() -> None:
    for client_type in (GrpcClient, HttpClient):
        with pytest.raises(ValueError, match="DODIL_TOKEN or SCRIPTUM_TOKEN"):
            client_type(settings(token=""))
        client_type(settings(org="")).close()  # the org travels with the token on the platform


@pytest.mark.parametrize(
    ("org", "org_name", "headers"),
    [
        ("acme", "", [("x-organization-id", "acme")]),
        ("", "Acme Inc", [("x-organization-name", "Acme Inc")]),
        ("acme", "Acme Inc", [("x-organization-id", "acme"), ("x-organization-name", "Acme Inc")]),
        ("", "", []),
    ],
)
def test_auth_metadata_names_the_org_only_when_configured(
    org: str, org_name: str, headers: list[tuple[str, str]]
) -> None:
    metadata = settings(org=org, org_name=org_name).auth_metadata()
    assert metadata == (("authorization", f"Bearer {TOKEN}"), *headers)
    assert TOKEN not in repr(settings(org=org, org_name=org_name))


def test_bad_retry_policy_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError, match="delays"):
        RetryPolicy(base_delay_s=-0.1)
