"""The studio as a LAN serves it: logins, throttling, what the file routes refuse, start-up refusals.

Everything runs over real HTTP on loopback against the real app (tiny models).
"""
import json
import os
import subprocess
import sys
import zipfile

import httpx
import pytest
from gradio_client import Client, handle_file

from studio.settings import ROOT, SettingsError, check_exposure, is_loopback, load_settings
from studio.users import UsersError, add_user, hash_password, main as users_cli, read_users_file, verify_password
from studio.webguard import LoginThrottle, WebGuard, file_routes, path_routes

pytestmark = pytest.mark.slow

ANN = ("ann", "correct-horse-battery")
BOB = ("bob", "staple-battery-horse")


@pytest.fixture(scope="module")
def served(new_home, launch_studio):
    """The studio with two logins (ann, bob): (url, studio)."""
    url, studio, close = launch_studio(new_home(), STUDIO_AUTH=",".join(":".join(u) for u in (ANN, BOB)),
                                       DEFAULT_DIFF_STEPS="2")
    yield url, studio
    close()


def logged_in(url: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=30)
    assert http.post("login", data={"username": ANN[0], "password": ANN[1]}).status_code == 200
    return http


def test_passwords_are_hashed_and_salted():
    a, b = hash_password("correct-horse-battery"), hash_password("correct-horse-battery")
    assert a != b and "correct-horse" not in a
    assert verify_password("correct-horse-battery", a) and not verify_password("correct-horse-batterY", a)


def test_users_cli_adds_hashed_users_and_refuses_duplicates_and_short_passwords(tmp_path, monkeypatch, capsys):
    users = tmp_path / "users"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a-long-enough-password\n"))
    assert users_cli(["--file", str(users), "add", "ann", "--password-stdin"]) == 0
    assert "a-long-enough-password" not in users.read_text() and (users.stat().st_mode & 0o077) == 0
    [(name, stored)] = read_users_file(users)
    assert name == "ann" and verify_password("a-long-enough-password", stored)
    with pytest.raises(UsersError, match="user 'ANN' already exists"):
        add_user(users, "ANN", "another-long-password")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    assert users_cli(["--file", str(users), "add", "bob", "--password-stdin"]) == 2
    assert capsys.readouterr().err.strip() == "error: password of 'bob' is 5 characters; use at least 10"


def test_a_users_file_with_a_plain_password_stops_start_up(tmp_path):
    from studio.settings import load_settings

    (tmp_path / "users").write_text("ann:hunter2hunter2\n")
    with pytest.raises(SettingsError, match="users file line 1: not a scrypt hash .*python -m studio.users add"):
        load_settings(env={"STUDIO_HOME": str(tmp_path)})
    add_user(tmp_path / "other", "ann", "a-long-enough-password")
    (tmp_path / "users").write_text((tmp_path / "other").read_text())
    s = load_settings(env={"STUDIO_HOME": str(tmp_path), "STUDIO_AUTH": "bob:another-long-password"})
    assert [u for u, _ in s.auth] == ["ann", "bob"]
    with pytest.raises(SettingsError, match="user 'ann' is listed twice"):
        load_settings(env={"STUDIO_HOME": str(tmp_path), "STUDIO_AUTH": "ann:another-long-password"})


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.1.1", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.20", False), ("studio.lan", False)])
def test_only_loopback_may_serve_without_logins(host, loopback):
    assert is_loopback(host) is loopback
    if loopback:
        check_exposure(host, ())
    else:
        with pytest.raises(SettingsError, match=f"serving on {host} needs logins"):
            check_exposure(host, ())
        check_exposure(host, (("ann", hash_password("x" * 10)),))


def test_app_refuses_a_lan_address_without_logins_in_one_line(tmp_path):
    env = dict(os.environ, STUDIO_HOME=str(tmp_path))
    env.pop("STUDIO_AUTH", None)
    run = subprocess.run([sys.executable, str(ROOT / "app.py"), "--host", "0.0.0.0"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == ("error: serving on 0.0.0.0 needs logins: add one with `python -m studio.users "
                                  "add NAME` (or set STUDIO_AUTH=user:password), or serve on 127.0.0.1")


def test_nothing_answers_without_a_login_and_monitoring_is_off(served):
    url, _ = served
    anon = httpx.Client(base_url=url, timeout=30)
    assert anon.get("gradio_api/info").status_code == 401
    for route in ("monitoring", "monitoring/anykey"):
        assert anon.get(route).status_code == 404
        assert logged_in(url).get(route).status_code == 404
    for http in (anon, logged_in(url)):  # the "Use via API" page reads it: an empty summary, no analytics
        summary = http.get("monitoring/summary")
        assert summary.status_code == 200 and summary.json() == {"functions": {}}
    client = Client(url, auth=ANN, verbose=False)
    assert client.predict(api_name="/health")["status"] == "ok"


def test_health_shows_no_server_paths(served):
    url, studio = served
    client = Client(url, auth=ANN, verbose=False)
    client.predict("Steady.", "a calm narrator", "english", 1, 1, api_name="/design")  # loads the TTS
    text = str(client.predict(api_name="/health"))
    assert "tts" in client.predict(api_name="/health")["models_loaded"]
    assert str(studio.settings.home) not in text and "/tmp" not in text and "model_dir" not in text


def test_only_results_are_fetchable(served, tmp_path):
    url, studio = served
    http = logged_in(url)
    raw = Client(url, auth=ANN, verbose=False, download_files=False)
    result = raw.predict("Steady.", "a calm narrator", "english", 1, 3, api_name="/design")[0]["url"]
    sample = tmp_path / "sample.wav"
    sample.write_bytes(http.get(result).content)  # a result is served to a logged-in user
    assert sample.read_bytes()[:4] == b"RIFF"
    assert httpx.get(result).status_code in (401, 403)  # but not to a stranger
    Client(url, auth=ANN, verbose=False).predict(handle_file(str(sample)), "Fetch Test", "", "english",
                                                 api_name="/cast_save")

    home = studio.settings.home
    member = studio.library.get("Fetch Test").audio_path
    model = next(p for p in (home / "models").rglob("*") if p.is_file())
    cache = os.environ["GRADIO_TEMP_DIR"]
    private = [home / "library.db", model, member, home / "users", ROOT / "app.py", "/etc/passwd"]
    crafted = [f"{prefix}{p}" for prefix in ("gradio_api/file=", "file=") for p in private]
    crafted += [f"gradio_api/file={cache}/../../etc/passwd", f"gradio_api/file={cache}/%2e%2e/%2e%2e/etc/passwd",
                f"gradio_api/file={cache}/..%2f..%2fetc/passwd", "gradio_api/file=library.db",
                f"gradio_api/file=../{home.name}/library.db", f"gradio_api/file={home}/./library.db",
                f"gradio_api/file=//{home}/library.db", f"gradio_api/file={home}/cast/"]
    for url_path in crafted:
        r = http.get(url_path)
        assert r.status_code in (403, 404), url_path
        assert b"SQLite" not in r.content and b"root:" not in r.content


def test_every_route_gradio_serves_files_from_serves_only_its_cache(served, tmp_path):
    """Every route of Gradio's router with a {name:path} parameter is tried with a file under STUDIO_HOME that
    Gradio itself would serve (allowed_paths covers the home): none may hand it out, and the guarded file routes
    refuse it with 403 while serving a result and an upload from Gradio's cache. A file route added by a Gradio
    upgrade is in path_routes, so it fails here until the guard covers it."""
    import gradio as gr
    from gradio.routes import App

    url, studio = served
    http = logged_in(url)
    result = Client(url, auth=ANN, verbose=False, download_files=False).predict(
        "Steady.", "a calm narrator", "english", 1, 3, api_name="/design")[0]["path"]
    sample = tmp_path / "upload.wav"
    sample.write_bytes(http.get(f"gradio_api/file={result}").content)
    [upload] = http.post("gradio_api/upload", files={"files": ("upload.wav", sample.read_bytes())}).json()
    probe = studio.settings.home / "cast" / "probe.wav"  # e.g. a cast member's reference or a take
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_bytes(b"RIFF-private-probe")
    with gr.Blocks() as blank:
        gr.Markdown()
    app = App.create_app(blank)
    routes, guarded = path_routes(app), {r.path for r in file_routes(app)}
    assert "/gradio_api/file/{path:path}" in guarded and "/gradio_api/file={path_or_url:path}" in guarded
    try:
        for route in routes:
            def at(target) -> str:
                return route.path.replace("{%s:path}" % route.param, str(target)).lstrip("/")

            for target in (probe, f"/{probe}", studio.settings.home / "library.db"):
                answer = http.get(at(target))
                assert b"RIFF-private-probe" not in answer.content and b"SQLite" not in answer.content, route.path
                if route.path in guarded:
                    assert answer.status_code == 403, (route.path, answer.status_code)
            if route.path in guarded:
                for cached in (result, upload):
                    answer = http.get(at(cached))
                    assert answer.status_code == 200 and answer.content[:4] == b"RIFF", (route.path, cached)
    finally:
        probe.unlink()


def test_each_user_sees_only_their_own_takes_but_the_cast_is_shared(served, espeak):
    url, studio = served
    ann, bob = (Client(url, auth=who, verbose=False) for who in (ANN, BOB))
    ref = espeak("The lamp must burn all night, whatever the weather brings us.", voice="en-us+f3")
    ann.predict(handle_file(str(ref)), "Team Voice", "a steady keeper", "english", api_name="/cast_upload")
    assert "Team Voice" in [m["name"] for m in bob.predict(api_name="/cast_list")]  # the team shares the cast
    made = {}
    for who, client in (("ann", ann), ("bob", bob)):  # both in the same project, in the same cast voice
        made[who] = client.predict("Steady now.", "calm", "Team Voice", 1, "seed-vc", None, 5, "english", "shared",
                                   api_name="/direct")[10][0]
        assert made[who]["user"] == who
    for who, client in (("ann", ann), ("bob", bob)):
        assert [t["take_id"] for t in client.predict("shared", api_name="/takes")] == [made[who]["take_id"]]
    theirs = made["ann"]["take_id"]
    for take_id in (theirs, "0" * 32):  # another user's take reads exactly like a take that does not exist
        with pytest.raises(Exception, match=f"no take with id '{take_id}'"):
            bob.predict(take_id, True, api_name="/take_circle")
    with pytest.raises(Exception, match=f"no take with id '{theirs}'"):
        studio.director.reroll(theirs, user="bob")
    assert ann.predict(theirs, True, api_name="/take_circle")["circled"] is True
    assert not studio.takes.get(made["bob"]["take_id"]).circled
    for who, client in (("ann", ann), ("bob", bob)):
        with zipfile.ZipFile(client.predict("shared", "wav", api_name="/export")) as z:
            assert [r["take_id"] for r in json.loads(z.read("takes.json"))] == [made[who]["take_id"]]


def test_each_user_has_their_own_scenes(served):
    url, studio = served
    ann, bob = (Client(url, auth=who, verbose=False) for who in (ANN, BOB))
    ann.predict("ANNA: You came back.", "Kitchen", "auto", api_name="/scene_import")
    for api, args in (("/scene_render", (1, None)), ("/scene_takes", (1,)), ("/scene_export", ("wav", 0.3))):
        with pytest.raises(Exception, match=r"no scene named 'kitchen' \(scenes: none yet\)"):
            bob.predict("kitchen", *args, api_name=api)
    bob.predict("MAX: I never left.", "kitchen", "auto", api_name="/scene_import")  # the same name, his own
    for who, text in (("ann", "You came back."), ("bob", "I never left.")):
        assert [x["text"] for x in studio.scenes.for_user(who).summary("KITCHEN")["lines"]] == [text]
    assert studio.scenes.store.names() == []  # without logins nobody would see either
    for who, client in (("Kitchen", ann), ("kitchen", bob)):   # the list a reload of the Scene tab shows
        assert [(s["name"], s["lines"]) for s in client.predict(api_name="/scene_list")] == [(who, 1)]

def test_login_attempts_are_throttled_per_client(served):  # keep it the last on `served`: it locks 127.0.0.1 out
    url, _ = served
    http = httpx.Client(base_url=url, timeout=30)
    codes = [http.post("login", data={"username": "ann", "password": f"guess-{i}"}).status_code for i in range(6)]
    assert codes == [400] * 5 + [429]
    locked = http.post("login", data={"username": ANN[0], "password": ANN[1]})
    assert locked.status_code == 429 and "try again in" in locked.json()["detail"]  # even the right password


def test_throttle_unlocks_after_the_wait_and_doubles_it_for_repeat_offenders():
    now = [0.0]
    throttle = LoginThrottle(max_failures=3, window_s=60, lock_s=10, clock=lambda: now[0])
    for _ in range(3):
        throttle.failed("10.0.0.5")
    assert throttle.wait_s("10.0.0.5") == 10 and throttle.wait_s("10.0.0.6") == 0
    now[0] = 11
    assert throttle.wait_s("10.0.0.5") == 0
    for _ in range(3):
        throttle.failed("10.0.0.5")
    assert throttle.wait_s("10.0.0.5") == 20
    now[0] = 100
    throttle.succeeded("10.0.0.5")
    for _ in range(2):
        throttle.failed("10.0.0.5")
    assert throttle.wait_s("10.0.0.5") == 0


def failed_logins(guard: WebGuard, peer: str, forwarded: list[str | None]) -> list[int]:
    """POST /login through `guard` once per entry (its X-Forwarded-For, or none): the status codes answered."""
    import asyncio

    async def wrong_password(scope, receive, send):  # what Gradio's /login answers a wrong password
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def one(header):
        sent = []

        async def send(message):
            sent.append(message)

        headers = [] if header is None else [(b"x-forwarded-for", header.encode())]
        scope = {"type": "http", "method": "POST", "path": "/login", "root_path": "", "client": (peer, 5000),
                 "headers": headers, "app": None}
        guard.app = wrong_password
        await guard(scope, None, send)
        return sent[0]["status"]

    return [asyncio.run(one(h)) for h in forwarded]


def test_behind_a_trusted_proxy_the_throttle_locks_the_real_client_not_everyone():
    guard = WebGuard(None, served_folders=[], trusted_proxies=load_settings(
        env={"STUDIO_TRUSTED_PROXIES": "10.0.0.0/30, 192.168.5.1"}).trusted_proxies)
    assert failed_logins(guard, "10.0.0.2", ["203.0.113.7"] * 6) == [400] * 5 + [429]
    assert failed_logins(guard, "192.168.5.1", ["203.0.113.7", "198.51.100.9, 10.0.0.1"]) == [429, 400]
    assert failed_logins(guard, "10.0.0.2", ["203.0.113.8"]) == [400]  # another client behind the same proxy
    # the proxy appends what it received: a client's own forged first entry does not move it out of the lock
    assert failed_logins(guard, "10.0.0.2", ["1.2.3.4, 203.0.113.7"]) == [429]


def test_an_untrusted_address_cannot_dodge_the_lock_by_forging_x_forwarded_for():
    guard = WebGuard(None, served_folders=[])  # default: no proxy is trusted
    assert failed_logins(guard, "192.168.1.50", [f"203.0.113.{i}" for i in range(6)]) == [400] * 5 + [429]
    assert failed_logins(guard, "192.168.1.51", [None]) == [400]
    assert load_settings(env={}).trusted_proxies == ()
    with pytest.raises(SettingsError, match=r"^STUDIO_TRUSTED_PROXIES: 'proxy\.lan' is not an address or network"):
        load_settings(env={"STUDIO_TRUSTED_PROXIES": "10.0.0.1,proxy.lan"})


def test_https_with_a_self_signed_pair_made_as_the_readme_says(new_home, launch_studio, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825", "-subj",
                    "/CN=studio.lan", "-addext", "subjectAltName=DNS:studio.lan,IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    readme = (ROOT / "README.md").read_text()
    assert 'openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=studio.lan"' in readme
    url, _, close = launch_studio(new_home(), STUDIO_AUTH=":".join(ANN), STUDIO_SSL_CERTFILE=str(cert),
                                  STUDIO_SSL_KEYFILE=str(key))
    try:
        assert url.startswith("https://")
        http = httpx.Client(base_url=url, verify=str(cert), timeout=30)
        assert http.get("gradio_api/info").status_code == 401
        assert http.post("login", data={"username": ANN[0], "password": ANN[1]}).status_code == 200
    finally:
        close()

