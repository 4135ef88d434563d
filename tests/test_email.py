"""The email plugin against a real SMTP server (aiosmtpd) on 127.0.0.1 with STARTTLS."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from email import message_from_bytes
from types import SimpleNamespace

import pytest

from monitor.alerts import Alert
from monitor.outbox import Outbox
from monitor.plugins import get_plugin_manager
from plugins import email as email_plugin
from tests.test_outbox import enqueue, wait_for

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult  # noqa: E402

PASSWORD = "smtp-pa55word"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content), session.authenticated))
        return "250 OK"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"alerts" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate,
                            auth_require_tls=True)
    controller.start()
    yield SimpleNamespace(inbox=inbox, port=controller.port, cafile=str(cert))
    controller.stop()


def alert():
    return Alert(post_id="p7", label="cookie", score=0.97, text="warm chocolate chip cookies",
                 source="dir:feed", model_version=4,
                 explanation=[{"word": "cookies", "drop": 0.5}, {"word": "chocolate", "drop": 0.2}])


def table(server, **extra):
    return {"host": "127.0.0.1", "port": server.port, "cafile": server.cafile,
            "from": "monitor@example.invalid", "to": ["oncall@example.invalid"], **extra}


def test_an_alert_arrives_over_starttls_with_login(make_ledger, smtp_server, monkeypatch,
                                                   capsys):
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    config = table(smtp_server, username="alerts", password_env="TEST_SMTP_PASSWORD")
    settings = SimpleNamespace(raw={"outbox": {"poll_interval": 0.01}},
                               plugins={"email": config})
    ledger = make_ledger()
    outbox = Outbox(ledger, get_plugin_manager(allow=["email"]), settings)
    outbox.start()
    try:
        enqueue(outbox, ledger, [alert()])
        assert wait_for(lambda: outbox.stats()["email"]["delivered"] == 1)
    finally:
        outbox.stop(5)
    ((sender, recipients, message, authenticated),) = smtp_server.inbox.messages
    assert (sender, recipients, authenticated) == (
        "monitor@example.invalid", ["oncall@example.invalid"], True)
    assert message["Subject"] == "[banana-monitor] cookie alert: score 0.97 (post p7)"
    assert message["X-Banana-Monitor-Alert-Id"] == "p7:cookie"
    body = message.get_payload(decode=True).decode()
    assert "warm chocolate chip cookies" in body and "Why: cookies, chocolate" in body
    assert PASSWORD not in "".join(capsys.readouterr())


def test_the_server_refuses_mail_without_starttls(smtp_server):
    config = table(smtp_server, starttls=False)
    with pytest.raises(Exception, match="STARTTLS"):
        email_plugin.send(email_plugin.build_message(alert(), config), config)
    assert smtp_server.inbox.messages == []


def test_an_untrusted_certificate_fails(smtp_server):
    config = table(smtp_server)
    del config["cafile"]  # the system CAs do not know our self-signed certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        email_plugin.send(email_plugin.build_message(alert(), config), config)
    assert smtp_server.inbox.messages == []


def test_missing_addresses_are_a_clear_error():
    with pytest.raises(email_plugin.EmailError, match="'from' and 'to'"):
        email_plugin.build_message(alert(), {"host": "127.0.0.1"})
