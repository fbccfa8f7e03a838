"""No client connects to PostgreSQL without verifying it: the RDS CA bundle the stacks ship, what
every client is given (Vault's connection and its handover Job, the team namespaces'
`postgres-tls` ConfigMap the golden path reads, the drills), and libpq itself honouring those
settings against a real PostgreSQL over TLS: an impostor (the interception a Service's
externalIPs once allowed) is refused, and a login that cannot bind to the TLS session too."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import NameOID

from components.database import client_tls, server_root
from tests.conftest import REPO

BUNDLE = REPO / "certs" / "rds-ca-us-east-1.pem"


# -- the bundle ---------------------------------------------------------------------------------

def test_the_shipped_bundle_holds_the_regions_roots_each_self_signed():
    certificates = x509.load_pem_x509_certificates(BUNDLE.read_bytes())
    names = [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certificates]
    assert names == [f"Amazon RDS us-east-1 Root CA {kind} G1"
                     for kind in ("RSA2048", "RSA4096", "ECC384")]
    assert server_root("us-east-1") == names[0]  # the database's rds-ca-rsa2048-g1
    now = datetime.datetime.now(datetime.UTC)
    for certificate in certificates:
        assert certificate.issuer == certificate.subject
        assert certificate.not_valid_before_utc < now < certificate.not_valid_after_utc
        key = certificate.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(certificate.signature, certificate.tbs_certificate_bytes,
                       ec.ECDSA(certificate.signature_hash_algorithm))
        else:  # raises on a corrupted or substituted certificate
            key.verify(certificate.signature, certificate.tbs_certificate_bytes,
                       padding.PKCS1v15(), certificate.signature_hash_algorithm)
    fingerprint = certificates[0].fingerprint(hashes.SHA256()).hex(":").upper()
    assert fingerprint in (REPO / "certs" / "README.md").read_text()


# -- what every client is given -----------------------------------------------------------------

def test_every_team_namespace_gets_verify_full_and_channel_binding(evaluations):
    bundle = BUNDLE.read_text()
    for evaluation in evaluations.values():
        namespaces = {n.inputs["metadata"]["name"] for n in evaluation.of_type(
            "kubernetes:core/v1:Namespace")
            if "platform.example.org/team" in n.inputs["metadata"].get("labels", {})}
        maps = {c.inputs["metadata"]["namespace"]: c.inputs["data"]
                for c in evaluation.of_type("kubernetes:core/v1:ConfigMap")
                if c.inputs["metadata"]["name"] == "postgres-tls"}
        assert namespaces and set(maps) == namespaces
        for data in maps.values():
            assert data == {"sslmode": "verify-full", "channelbinding": "require",
                            "root.crt": bundle}
        (group,) = evaluation.of_type("aws:rds/parameterGroup:ParameterGroup")
        parameters = {p["name"]: p["value"] for p in group.inputs["parameters"]}
        assert parameters["rds.force_ssl"] == "1"
        assert parameters["password_encryption"] == "scram-sha-256"  # channel binding needs it


def test_no_client_in_gitops_or_the_plan_settles_for_an_unverified_connection(evaluations):
    """Every PGSSLMODE a manifest sets comes from the platform's settings, never `require`."""
    import yaml

    literal = []
    for path in (REPO / "gitops").rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            text = yaml.safe_dump(document)
            if "PGSSLMODE" in text and "configMapKeyRef" not in text:
                literal.append(str(path))
    assert literal == []
    for evaluation in evaluations.values():
        for job in evaluation.of_type("kubernetes:batch/v1:Job"):
            for container in job.inputs["spec"]["template"]["spec"]["containers"]:
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                if "PGSSLMODE" in env:
                    assert env["PGSSLMODE"] == "verify-full", job.name


def test_the_restore_drill_verifies_the_scratch_instance(monkeypatch):
    import psycopg

    from platformctl import drills

    seen = {}
    monkeypatch.setattr(psycopg, "connect", lambda **kwargs: seen.update(kwargs))
    drills.psycopg_connect("h", 5432, "u", "p", "d", ca_bundle=str(BUNDLE))
    assert (seen["sslmode"], seen["sslrootcert"]) == ("verify-full", str(BUNDLE))


# -- libpq against a real PostgreSQL over TLS ----------------------------------------------------

INITDB = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _authority(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    return key, certificate


def _server(authority, host: str):
    ca_key, ca = authority
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                   .issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]),
                                  critical=False)
                   .sign(ca_key, hashes.SHA256()))
    return key, certificate


def _pem(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_postgres():
    """PostgreSQL on loopback, TLS only, SCRAM for `app`, md5 for `legacy`; its certificate
    for `localhost` signed by a throwaway authority. Yields (port, authority, root dir)."""
    if not INITDB:
        pytest.fail("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    bin_dir = INITDB[-1].parent
    root = Path(tempfile.mkdtemp(prefix="tls-pg-"))
    data = root / "data"
    authority = _authority("platform test RDS root")
    key, certificate = _server(authority, "localhost")
    (root / "server.crt").write_bytes(_pem(certificate))
    (root / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(root / "server.key", 0o600)
    if os.geteuid() == 0:
        for path in (root, root / "server.crt", root / "server.key"):
            shutil.chown(path, "postgres")
    subprocess.run(_as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust",
                                "-U", "postgres", "--no-sync"), check=True, capture_output=True)
    (data / "pg_hba.conf").write_text(
        "local all postgres trust\n"
        "hostssl all app 127.0.0.1/32 scram-sha-256\n"
        "hostssl all legacy 127.0.0.1/32 md5\n")
    port = 54329
    subprocess.run(_as_postgres(
        str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
        f"-k {root} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c ssl=on "
        f"-c ssl_cert_file={root / 'server.crt'} -c ssl_key_file={root / 'server.key'}",
        "start"), check=True, capture_output=True)
    setup = ("SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN PASSWORD 'pw'; "
             "SET password_encryption = 'md5'; CREATE ROLE legacy LOGIN PASSWORD 'pw';")
    subprocess.run(_as_postgres(str(bin_dir / "psql"), "-h", str(root), "-p", str(port),
                                "-U", "postgres", "-c", setup), check=True, capture_output=True)
    try:
        yield port, authority, root
    finally:
        subprocess.run(_as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m",
                                    "immediate", "stop"), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _connect(port: int, user: str, settings: dict[str, str], root_file: Path):
    """A connection as a golden-path pod makes it: libpq reads the ConfigMap's values from the
    environment variables the manifests set."""
    import psycopg

    env = {"PGSSLMODE": settings["sslmode"], "PGCHANNELBINDING": settings["channelbinding"],
           "PGSSLROOTCERT": str(root_file)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with psycopg.connect(host="localhost", port=port, user=user, password="pw",
                             dbname="postgres", connect_timeout=5) as conn:
            return conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                                ).fetchone()[0]
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_libpq_with_the_platforms_settings_refuses_an_impostor(tls_postgres, tmp_path):
    import psycopg

    from components.database import DatabaseArgs

    port, authority, _ = tls_postgres
    # The settings the platform hands every team namespace, with this server's authority as
    # the bundle (the real one holds the RDS roots).
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(_pem(authority[1]))
    settings = client_tls(DatabaseArgs.model_validate({
        "caBundleFile": str(bundle), "instanceClass": "db.t4g.small",
        "maxAllocatedStorageGib": 30}))
    root_file = tmp_path / "root.crt"
    root_file.write_text(settings["root.crt"])
    assert _connect(port, "app", settings, root_file) is True
    # An impostor: the same server under a certificate the bundle did not sign (another
    # authority), as a pod answering for the database's address would present.
    impostor = tmp_path / "impostor.pem"
    impostor.write_bytes(_pem(_authority("somebody else")[1]))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(port, "app", settings, impostor)
    # `require` (what clients were given before) would have talked to the impostor.
    assert _connect(port, "app", {**settings, "sslmode": "require"}, tmp_path / "absent") is True
    # Channel binding: a login whose verifier cannot bind (md5) is refused, not downgraded.
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        _connect(port, "legacy", settings, root_file)
