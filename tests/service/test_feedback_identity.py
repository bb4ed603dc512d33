"""The feedback store's Azure path: no connection string, the table endpoint and DefaultAzureCredential with the
App Service managed identity. Azurite runs over HTTPS with OAuth; a local endpoint stands in for App Service's
managed identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER), issuing tokens for the storage audience."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from scripts.local_server import start_azurite, stop_azurite
from tests.conftest import free_port
from tweet_sentiment.feedback import FeedbackStore, FeedbackUnavailable

IDENTITY_HEADER = uuid.uuid4().hex


def self_signed_certificate(folder) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


class ManagedIdentityEndpoint:
    """App Service's managed identity endpoint, as the Python SDK calls it: GET ?resource=...&api-version=...
    with the X-IDENTITY-HEADER secret. Records the resources asked for; `audience` is what tokens claim."""

    def __init__(self, audience: str = "https://storage.azure.com"):
        self.requested: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = parse_qs(urlparse(self.path).query)
                if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                    self.send_response(401)
                    self.end_headers()
                    return
                resource = query.get("resource", [""])[0]
                endpoint.requested.append(resource)
                now = int(time.time())
                token = jwt.encode(
                    {
                        "aud": audience,
                        "iss": f"https://sts.windows.net/{uuid.uuid4()}/",
                        "iat": now,
                        "nbf": now,
                        "exp": now + 3600,
                        "oid": str(uuid.uuid4()),
                    },
                    "not-checked-by-azurite-basic-oauth-0123456789",
                    algorithm="HS256",
                )
                body = json.dumps(
                    {"access_token": token, "expires_on": str(now + 3600), "resource": resource, "token_type": "Bearer"}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/msi/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def azurite_with_oauth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("azurite-oauth")
    cert, key = self_signed_certificate(folder)
    port = free_port()
    process = start_azurite(port, folder, ("--oauth", "basic", "--cert", cert, "--key", key))
    yield f"https://127.0.0.1:{port}/devstoreaccount1", cert
    stop_azurite(process)


@pytest.fixture()
def identity(monkeypatch, azurite_with_oauth):
    """The environment App Service gives a container with a system-assigned identity, and nothing else."""
    _, cert = azurite_with_oauth
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "FEEDBACK_STORAGE_CONNECTION_STRING",
        "AzureWebJobsStorage",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # trust Azurite's self-signed certificate

    def start(audience: str = "https://storage.azure.com") -> ManagedIdentityEndpoint:
        endpoint = ManagedIdentityEndpoint(audience)
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
        started.append(endpoint)
        return endpoint

    started: list[ManagedIdentityEndpoint] = []
    yield start
    for endpoint in started:
        endpoint.stop()


def test_feedback_is_stored_with_the_managed_identity(azurite_with_oauth, identity):
    table_endpoint, _ = azurite_with_oauth
    endpoint = identity()
    store = FeedbackStore(None, "feedback", timeout_seconds=5, table_endpoint=table_endpoint)
    prediction_id = str(uuid.uuid4())
    assert (
        store.save(
            {
                "prediction_id": prediction_id,
                "text": "@united lost my bag",
                "predicted_label": "negative",
                "correct": True,
            }
        )
        is True
    )
    assert prediction_id in {row["RowKey"] for row in store.all()}
    assert endpoint.requested and all(
        resource.startswith("https://storage.azure.com") for resource in endpoint.requested
    )


def test_a_token_storage_refuses_is_a_503_not_a_crash(azurite_with_oauth, identity):
    table_endpoint, _ = azurite_with_oauth
    identity(audience="https://vault.azure.net")  # a token for another service
    store = FeedbackStore(None, "feedback", timeout_seconds=5, table_endpoint=table_endpoint)
    with pytest.raises(FeedbackUnavailable, match="unreachable"):
        store.save(
            {"prediction_id": str(uuid.uuid4()), "text": "@united hi", "predicted_label": "neutral", "correct": True}
        )
