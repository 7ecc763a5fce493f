"""A local stand-in for the Phaxio v2.1 fax API, over HTTPS, for the faxapi
transport's tests.  It implements the endpoints the transport uses with the
documented request and response shapes, checks each request (HTTP basic
authentication, fields, the documents), and plays a script chosen by the
destination number:

  +15550001001  success after two "inprogress" polls
  +15550001002  busy on the first two faxes (lineError), then success
  +15550001003  failure: invalid number (fatalError)
  +15550001004  partialsuccess
  +15550001005  the first POST gets 429 with Retry-After: 1, then success
  +15550001006  the first POST gets 500, then success
  +15550001007  the POST never gets an answer
  +15550001009  stays "inprogress" (for the polling benchmark)
  anything else success at the first poll

usage: /usr/bin/python3 fax_server.py PORT CERT KEY KEY:SECRET LOGFILE
Every request it gets is appended to LOGFILE as a JSON line.
"""
import base64
import cgi
import json
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
FAXES = {}
POSTS = {}          # number -> POSTs seen
NEXT_ID = [1000]


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def pdf_pages(data):
    """Pages of an uploaded PDF as pdfinfo counts them, or None if it is
    not a PDF pdfinfo can read (the provider refuses those)."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as t:
        t.write(data)
        t.flush()
        r = subprocess.run(["pdfinfo", t.name], capture_output=True, text=True)
    m = re.search(r"^Pages:\s+(\d+)", r.stdout, re.M)
    return int(m.group(1)) if r.returncode == 0 and m else None


def fax_json(f):
    status = f["status"]
    d = {"id": f["id"], "direction": "sent", "num_pages": f["pages"],
         "status": status, "is_test": False, "created_at": f["created_at"],
         "caller_id": None, "from_number": None,
         "completed_at": f.get("completed_at"), "cost": 7,
         "tags": {"roigate_job": f["tag"]},
         "recipients": [{"phone_number": f["to"], "status": status,
                         "retry_count": 0, "completed_at": f.get("completed_at"),
                         "bitrate": 14400, "resolution": 8040,
                         "error_type": f.get("error_type"),
                         "error_id": f.get("error_id"),
                         "error_message": f.get("error_message"),
                         "csid": "+1 555 000 9999"}],
         "to_number": None, "error_id": f.get("error_id"),
         "error_type": f.get("error_type"),
         "error_message": f.get("error_message")}
    return d


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def note(self, entry):
        entry["at"] = time.time()
        entry["peer"] = self.client_address[1]      # one per connection
        with LOCK, open(self.server.logfile, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def authorized(self):
        want = "Basic " + base64.b64encode(self.server.creds.encode()).decode()
        if self.headers.get("Authorization") != want:
            self.note({"method": self.command, "path": self.path, "auth": False})
            self.reply(401, {"success": False,
                             "message": "Invalid API credentials"})
            return False
        return True

    def do_POST(self):
        if not self.authorized():
            return
        if urlparse(self.path).path != "/v2.1/faxes":
            return self.reply(404, {"success": False, "message": "Not found"})
        form = cgi.FieldStorage(fp=self.rfile, headers=self.headers,
                                environ={"REQUEST_METHOD": "POST",
                                         "CONTENT_TYPE": self.headers["Content-Type"]})
        to = form.getfirst("to", "")
        files = form["file[]"] if "file[]" in form else []
        if not isinstance(files, list):
            files = [files]
        entry = {"method": "POST", "path": self.path, "auth": True, "to": to,
                 "header_text": form.getfirst("header_text", ""),
                 "tag": form.getfirst("tag[roigate_job]", ""),
                 "files": [{"name": f.filename, "type": f.type,
                            "size": len(f.value),
                            "pdf": f.value.startswith(b"%PDF-"),
                            "pages": pdf_pages(f.value)} for f in files]}
        self.note(entry)
        if not to.startswith("+") or not files:
            return self.reply(422, {"success": False,
                                    "message": "to and file are required"})
        if any(f["pages"] is None for f in entry["files"]):
            return self.reply(422, {"success": False,
                                    "message": "File could not be processed"})
        if to == "+15550001008":
            return self.reply(422, {"success": False, "message":
                                    "Phone number is not a valid fax number"})
        with LOCK:
            n = POSTS[to] = POSTS.get(to, 0) + 1
        if to == "+15550001005" and n == 1:
            return self.reply(429, {"success": False,
                                    "message": "Rate limit exceeded"},
                              {"Retry-After": "1"})
        if to == "+15550001006" and n == 1:
            return self.reply(500, {"success": False,
                                    "message": "Internal server error"})
        if to == "+15550001007":
            time.sleep(3600)            # the server that hangs
        with LOCK:
            NEXT_ID[0] += 1
            fid = NEXT_ID[0]
            FAXES[fid] = {"id": fid, "to": to, "tag": entry["tag"], "polls": 0,
                          "status": "queued", "pages": 0, "created_at": now(),
                          "post": n, "pdf_pages": sum(
                              f["pages"] for f in entry["files"])}
        self.reply(200, {"success": True, "message": "Fax queued for sending",
                         "data": {"id": fid}})

    def advance(self, f):
        """The script: what a status request finds."""
        f["polls"] += 1
        to = f["to"]
        final = dict(status="success", pages=f["pdf_pages"], completed_at=now())
        if to == "+15550001001" and f["polls"] <= 2:
            f.update(status="inprogress")
        elif to == "+15550001009":
            f.update(status="inprogress")
        elif to == "+15550001002" and f["post"] <= 2:
            f.update(status="failure", error_type="lineError", error_id=34,
                     error_message="Busy", completed_at=now())
        elif to == "+15550001003":
            f.update(status="failure", error_type="fatalError", error_id=11,
                     error_message="Invalid number", completed_at=now())
        elif to == "+15550001004":
            f.update(status="partialsuccess", pages=f["pdf_pages"] - 1,
                     error_type="faxError",
                     error_id=90, error_message="Line dropped after page 2",
                     completed_at=now())
        elif f["status"] in ("queued", "inprogress"):
            f.update(final)

    def do_GET(self):
        if not self.authorized():
            return
        u = urlparse(self.path)
        self.note({"method": "GET", "path": self.path, "auth": True})
        if u.path == "/v2.1/faxes":
            tag = parse_qs(u.query).get("tag[roigate_job]", [None])[0]
            with LOCK:
                found = [fax_json(f) for f in FAXES.values() if f["tag"] == tag]
            return self.reply(200, {"success": True, "message": "Retrieved faxes",
                                    "data": found,
                                    "paging": {"total": len(found),
                                               "per_page": 20, "page": 1}})
        if u.path.startswith("/v2.1/faxes/"):
            fid = int(u.path.rsplit("/", 1)[1]) if u.path.rsplit(
                "/", 1)[1].isdigit() else -1
            with LOCK:
                f = FAXES.get(fid)
                if f:
                    self.advance(f)
                    body = fax_json(f)
            if not f:
                return self.reply(404, {"success": False,
                                        "message": "Fax not found"})
            return self.reply(200, {"success": True,
                                    "message": "Retrieved fax successfully",
                                    "data": body})
        self.reply(404, {"success": False, "message": "Not found"})


def main():
    port, cert, key, creds, logfile = sys.argv[1:6]
    srv = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    srv.daemon_threads = True
    srv.creds = creds
    srv.logfile = logfile
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
