"""Dashboard sign-in in-process: the token once in a form, then a signed cookie that does not
hold it; everything but the sign-in form refuses a browser without that cookie."""

import fakeredis
import pytest

from ingest.app import create_app
from ingest.dashboard import session
from shared.config import load_settings

TOKEN = "dashboard-test-api-token-123"


def make_client(api_token=TOKEN):
    settings = load_settings(
        {
            "SIGNATURE_MODE": "off",
            "REDIS_URL": "redis://unused",
            "DATABASE_URL": "sqlite://",
            "API_TOKEN": api_token,
        }
    )
    return create_app(settings, redis_client=fakeredis.FakeRedis()).test_client()


def sign_in(client, token=TOKEN, **headers):
    return client.post("/dashboard/login", data={"token": token}, headers=headers)


def test_signed_out_the_page_is_the_form_and_holds_no_token():
    client = make_client()
    resp = client.get("/dashboard")
    assert resp.status_code == 200
    assert b'<form method="post" action="/dashboard/login"' in resp.data
    assert TOKEN.encode() not in resp.data
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_sign_in_sets_a_strict_httponly_cookie_without_the_token():
    client = make_client()
    resp = sign_in(client)
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/dashboard"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{session.COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http here; see the next test
    assert TOKEN not in cookie
    page = client.get("/dashboard")
    assert b"dashboard.js" in page.data
    assert TOKEN.encode() not in page.data


def test_the_cookie_is_secure_behind_an_https_proxy():
    client = make_client()
    assert "Secure" in sign_in(client, **{"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]


@pytest.mark.parametrize("wrong", ["", "nope", TOKEN + "x", TOKEN.upper()])
def test_a_wrong_token_is_refused(wrong):
    client = make_client()
    resp = sign_in(client, wrong)
    assert resp.status_code == 401
    assert b"not the API token" in resp.data
    assert "Set-Cookie" not in resp.headers
    assert client.get("/dashboard/data").status_code == 401


def test_a_form_posted_from_another_site_is_refused():
    client = make_client()
    resp = sign_in(client, Origin="https://evil.example")
    assert resp.status_code == 403
    assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize("path", ["/dashboard/data", "/dashboard/stream-token"])
def test_data_and_stream_token_need_the_cookie(path):
    client = make_client()
    resp = client.get(path)
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "unauthorized"


def test_a_forged_or_foreign_cookie_is_refused():
    client = make_client()
    client.set_cookie(session.COOKIE, "eyJ2IjoxfQ.forged.signature", path="/dashboard")
    assert client.get("/dashboard/data").status_code == 401
    # Signed with another API token (rotated since): refused too.
    other = make_client("another-token")
    sign_in(other, "another-token")
    value = other.get_cookie(session.COOKIE, path="/dashboard").value
    client.set_cookie(session.COOKIE, value, path="/dashboard")
    assert client.get("/dashboard/data").status_code == 401


def test_sign_out_clears_the_cookie():
    client = make_client()
    sign_in(client)
    resp = client.post("/dashboard/logout")
    assert resp.status_code == 303
    assert client.get_cookie(session.COOKIE, path="/dashboard") is None
    assert client.get("/dashboard/data").status_code == 401


def test_assets_are_served_by_the_app():
    client = make_client()
    for name in ("dashboard.js", "dashboard.css"):
        with client.get(f"/dashboard/static/{name}") as resp:
            assert resp.status_code == 200
            body = resp.data
        # Nothing from another origin (the SVG namespace is a name, not a fetch).
        assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")
        assert b"https://" not in body
