"""A real SMTP server for the S/MIME tests (aiosmtpd), run as
`/usr/bin/python3 smtp_server.py PORT STORE [CERT KEY]`: with CERT and KEY
it offers STARTTLS and refuses mail before it; without, it offers none.
With SMTP_AUTH=USER:PASSWORD in the environment it requires AUTH.
Recipients starting with "busy" get 451, with "reject" 550; every accepted
message is written to STORE as N.eml."""
import asyncio
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult


class Store:
    def __init__(self, folder):
        self.folder = folder
        self.n = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # Every client that gets as far as EHLO is noted.
        with open(os.path.join(self.folder, "connections"), "a") as f:
            f.write(hostname + "\n")
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("busy"):
            return "451 4.2.1 mailbox busy, try later (synthetic)"
        if address.startswith("reject"):
            return "550 5.1.1 no such mailbox here (synthetic)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        path = os.path.join(self.folder, f"{self.n}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        with open(os.path.join(self.folder, f"{self.n}.envelope"), "w") as f:
            f.write(f"{envelope.mail_from}\n{' '.join(envelope.rcpt_tos)}\n"
                    f"tls={session.ssl is not None}\n")
        return f"250 2.0.0 OK queued as Q{self.n:05d}"


def authenticator(expected):
    """AUTH PLAIN/LOGIN against one USER:PASSWORD (SMTP_AUTH)."""
    user, password = expected.split(":", 1)

    def check(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode() == user and
              auth_data.password.decode() == password)
        return AuthResult(success=ok)
    return check


class TLSController(Controller):
    def __init__(self, handler, ctx, **kw):
        self.ctx = ctx
        super().__init__(handler, **kw)

    def factory(self):
        auth = os.environ.get("SMTP_AUTH")
        kw = {}
        if auth:
            kw = {"auth_required": True, "authenticator": authenticator(auth)}
        return SMTP(self.handler, tls_context=self.ctx,
                    require_starttls=self.ctx is not None,
                    data_size_limit=200 * 1024 * 1024, hostname="localhost", **kw)


def main():
    port, store = int(sys.argv[1]), sys.argv[2]
    ctx = None
    if len(sys.argv) > 4:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    c = TLSController(Store(store), ctx, hostname="127.0.0.1", port=port)
    c.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        c.stop()


if __name__ == "__main__":
    main()
