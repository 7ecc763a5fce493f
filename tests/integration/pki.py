"""A synthetic PKI for the S/MIME tests: a CA, the relay's TLS certificate,
the gateway's signing certificate, recipients' certificates (good, expired,
weak key, wrong address), and an unrelated CA.  Made with python3-
cryptography; nothing here is a real certificate."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.utcnow()
DAY = datetime.timedelta(days=1)


def _key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                         "roigate tests (synthetic)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(folder, name, key, cert):
    kp = os.path.join(folder, name + ".key")
    cp = os.path.join(folder, name + ".pem")
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    os.chmod(kp, 0o600)
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cp, kp


class CA:
    def __init__(self, folder, name):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.key = _key()
        self.cert = (x509.CertificateBuilder()
                     .subject_name(_name(name)).issuer_name(_name(name))
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - DAY).not_valid_after(NOW + 3650 * DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                    critical=True)
                     .add_extension(x509.KeyUsage(
                         digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem, _ = _write(folder, name.replace(" ", "-"), self.key, self.cert)

    def issue(self, name, email=None, dns=None, bits=2048, before=None,
              after=None, key_encipherment=True, server=False):
        key = _key(bits)
        b = (x509.CertificateBuilder()
             .subject_name(_name(email or name)).issuer_name(self.cert.subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(before or NOW - DAY)
             .not_valid_after(after or NOW + 365 * DAY)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                            critical=True))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(d) for d in dns] +
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                critical=False).add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            b = (b.add_extension(x509.SubjectAlternativeName(
                [x509.RFC822Name(email)]), critical=False)
                 .add_extension(x509.KeyUsage(
                     digital_signature=True, content_commitment=False,
                     key_encipherment=key_encipherment, data_encipherment=False,
                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                     encipher_only=False, decipher_only=False), critical=True)
                 .add_extension(x509.ExtendedKeyUsage(
                     [ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False))
        cert = b.sign(self.key, hashes.SHA256())
        return _write(self.folder, name, key, cert)


class PKI:
    def __init__(self, folder):
        self.ca = CA(os.path.join(folder, "ca"), "Test Hospital CA")
        self.other = CA(os.path.join(folder, "other"), "Impostor CA")
        self.relay = self.ca.issue("relay", dns=["localhost"], server=True)
        self.impostor_relay = self.other.issue("relay", dns=["localhost"],
                                               server=True)
        self.gateway = self.ca.issue("gateway", email="roi@hospital.test")
        self.recipient = self.ca.issue("dr-ada", email="dr.ada@clinic.test")
        self.expired = self.ca.issue("expired", email="old@clinic.test",
                                     before=NOW - 400 * DAY, after=NOW - 30 * DAY)
        self.weak = self.ca.issue("weak", email="weak@clinic.test", bits=1024)
        self.no_encipher = self.ca.issue("signonly", email="sign@clinic.test",
                                         key_encipherment=False)
        self.busy = self.ca.issue("busy", email="busy@clinic.test")
        self.reject = self.ca.issue("reject", email="reject@clinic.test")
