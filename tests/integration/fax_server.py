"""A local stand-in for the Phaxio v2.1 fax API, over HTTPS, for the faxapi
transport's tests.

It follows the provider's documentation (https://www.phaxio.com/docs/api/v2.1/:
faxes/create_and_send_fax, faxes/list_faxes, faxes/get_fax, intro/paging,
/docs/statuses, /docs/errorMessages) and the traffic phaxio-ruby recorded
against the real service (spec/support/cassettes/fax/{create,get,list}.yml):

  POST /v2.1/faxes          multipart: to, file (file[] for several),
                            header_text (50 characters at most), tag[NAME],
                            caller_id -> {"success", "message", "data": {"id"}}
  GET  /v2.1/faxes/ID       -> {"success", "message", "data": FAX}
  GET  /v2.1/faxes          created_before (default now), created_after
                            (default one week ago), tag[NAME] (exact value),
                            direction, status, phone_number, per_page
                            (default 25, at most 1000), page (1-based)
                            -> {"success", "message", "data": [FAX...] newest
                            first, "paging": {"total", "per_page", "page"}}

A FAX is shaped like the cassettes' (times in the service's own zone,
"2021-11-04T16:28:30.000-05:00"; recipients[] without any CSID).  Every
request is checked (HTTP basic authentication, fields, the documents) and
appended to LOGFILE as a JSON line.  A script chosen by the destination
number decides what happens to a fax (error types and ids from
/docs/errorMessages):

  +15550001001  success after two "inprogress" polls
  +15550001002  lineError 17 Busy on the first two faxes, then success
  +15550001003  lineError 34 Phone number not operational
  +15550001004  faxError 8 No response after sending a page, then success
  +15550001005  the first POST gets 429 with Retry-After: 1, then success
  +15550001006  the first POST gets 500, then success
  +15550001007  the POST never gets an answer
  +15550001008  the POST gets 422 (not a valid fax number)
  +15550001009  stays "inprogress" (for the polling benchmark)
  +15550001011  the first POST gets 200 with "success": false, then success
  +15550001013  lineError 73 Number changed
  +15550001014  lineError 50 Call rejected
  +15550001015  generalError 5 Insufficient funds
  +15550001016  documentConversionError 133 Failed to normalize PDF document
  anything else success at the first poll

Test knobs, none of them part of the provider's API: the file CONTROL
(LOGFILE with ".control" instead of ".jsonl"), read at each request, may
hold {"clock": seconds the service's clock runs ahead, "max_per_page": a
smaller page than asked for, "list_unsuccessful": how many of the next
list requests answer 200 with "success": false, "ignore_tag_filter": true
to list faxes whatever their tags}.

usage: /usr/bin/python3 fax_server.py PORT CERT KEY KEY:SECRET LOGFILE
"""
import base64
import cgi
import datetime
import json
import os
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
ZONE = datetime.timezone(datetime.timedelta(hours=-5))   # as the cassettes
HEADER_MAX = 50


def control(server):
    path = re.sub(r"\.jsonl$", "", server.logfile) + ".control"
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def service_now(server):
    return time.time() + control(server).get("clock", 0)


def stamp(t):
    """A time as the service writes it."""
    if t is None:
        return None
    d = datetime.datetime.fromtimestamp(t, ZONE)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}" + \
        d.strftime("%z")[:3] + ":" + d.strftime("%z")[3:]


def parse_time(s):
    """RFC 3339; "the timezone may be omitted" (then UTC here)."""
    d = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


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
    done = stamp(f.get("completed_at"))
    return {"id": f["id"], "direction": "sent", "num_pages": f["pages"],
            "status": status, "is_test": False,
            "created_at": stamp(f["created_at"]), "caller_id": f["caller_id"],
            "from_number": None, "completed_at": done, "caller_name": None,
            "cost": 7 if status == "success" else 0, "tags": dict(f["tags"]),
            "recipients": [{"phone_number": f["to"],
                            "status": None if status == "queued" else status,
                            "retry_count": 0, "completed_at": done,
                            "bitrate": 14400 if status == "success" else None,
                            "resolution": 8040 if status == "success" else None,
                            "error_type": f.get("error_type"),
                            "error_id": f.get("error_id"),
                            "error_message": f.get("error_message")}],
            "to_number": None, "error_id": f.get("error_id"),
            "error_type": f.get("error_type"),
            "error_message": f.get("error_message"), "barcodes": []}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
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
        files = []
        for name in ("file", "file[]"):
            if name in form:
                v = form[name]
                files += v if isinstance(v, list) else [v]
        tags = {k[4:-1]: form.getfirst(k) for k in form.keys()
                if k.startswith("tag[") and k.endswith("]")}
        header = form.getfirst("header_text")
        entry = {"method": "POST", "path": self.path, "auth": True, "to": to,
                 "fields": sorted(form.keys()), "header_text": header,
                 "tags": tags,
                 "files": [{"name": f.filename, "type": f.type,
                            "size": len(f.value),
                            "pdf": f.value.startswith(b"%PDF-"),
                            "pages": pdf_pages(f.value)} for f in files]}
        self.note(entry)
        if not to.startswith("+") or not files:
            return self.reply(422, {"success": False,
                                    "message": "to and file are required"})
        if header is not None and len(header) > HEADER_MAX:
            return self.reply(422, {"success": False, "message":
                                    "header_text may be at most 50 characters"})
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
        if to == "+15550001011" and n == 1:
            return self.reply(200, {"success": False,
                                    "message": "Fax could not be queued"})
        if to == "+15550001007":
            time.sleep(3600)            # the server that hangs
        with LOCK:
            NEXT_ID[0] += 1
            fid = NEXT_ID[0]
            FAXES[fid] = {"id": fid, "to": to, "tags": tags, "polls": 0,
                          "status": "queued", "pages": 0,
                          "created_at": service_now(self.server),
                          "caller_id": form.getfirst("caller_id"),
                          "post": n, "pdf_pages": sum(
                              f["pages"] for f in entry["files"])}
        self.reply(200, {"success": True, "message": "Fax queued for sending",
                         "data": {"id": fid}})

    def fail(self, f, etype, eid, msg):
        f.update(status="failure", error_type=etype, error_id=eid,
                 error_message=msg, completed_at=service_now(self.server))

    def advance(self, f):
        """The script: what a status request finds."""
        f["polls"] += 1
        to = f["to"]
        f["pages"] = f["pdf_pages"]     # the fax's own pages, once converted
        if f["status"] not in ("queued", "inprogress"):
            return
        if to == "+15550001001" and f["polls"] <= 2:
            f.update(status="inprogress")
        elif to == "+15550001009":
            f.update(status="inprogress")
        elif to == "+15550001002" and f["post"] <= 2:
            self.fail(f, "lineError", 17, "Busy")
        elif to == "+15550001003":
            self.fail(f, "lineError", 34, "Phone number not operational")
        elif to == "+15550001004" and f["post"] == 1:
            self.fail(f, "faxError", 8, "No response after sending a page")
        elif to == "+15550001013":
            self.fail(f, "lineError", 73, "Number changed")
        elif to == "+15550001014":
            self.fail(f, "lineError", 50, "Call rejected")
        elif to == "+15550001015":
            self.fail(f, "generalError", 5, "Insufficient funds to send fax "
                      "and not able to auto recharge.")
        elif to == "+15550001016":
            self.fail(f, "documentConversionError", 133,
                      "Failed to normalize PDF document")
        else:
            f.update(status="success", completed_at=service_now(self.server))

    def list_faxes(self, q):
        ctl = control(self.server)
        if ctl.get("list_unsuccessful", 0) > 0:
            ctl["list_unsuccessful"] -= 1
            path = re.sub(r"\.jsonl$", "", self.server.logfile) + ".control"
            with open(path, "w") as f:
                json.dump(ctl, f)
            return self.reply(200, {"success": False,
                                    "message": "Could not retrieve faxes"})
        now = service_now(self.server)
        try:
            before = parse_time(q["created_before"][0]) \
                if "created_before" in q else now
            after = parse_time(q["created_after"][0]) \
                if "created_after" in q else now - 7 * 86400
            per_page = min(int(q.get("per_page", ["25"])[0]), 1000)
            page = int(q.get("page", ["1"])[0])
        except ValueError as e:
            return self.reply(422, {"success": False, "message": str(e)})
        if per_page < 1 or page < 1:
            return self.reply(422, {"success": False,
                                    "message": "per_page and page are 1 or more"})
        per_page = min(per_page, ctl.get("max_per_page", per_page))
        tags = {k[4:-1]: v[0] for k, v in q.items()
                if k.startswith("tag[") and k.endswith("]")}
        if ctl.get("ignore_tag_filter"):
            tags = {}
        with LOCK:
            found = [f for f in FAXES.values()
                     if after <= f["created_at"] <= before and
                     all(f["tags"].get(k) == v for k, v in tags.items()) and
                     q.get("direction", ["sent"])[0] == "sent" and
                     q.get("status", [f["status"]])[0] == f["status"] and
                     q.get("phone_number", [f["to"]])[0] == f["to"]]
            found.sort(key=lambda f: f["created_at"], reverse=True)
            data = [fax_json(f) for f in
                    found[(page - 1) * per_page:page * per_page]]
        self.reply(200, {"success": True,
                         "message": "Retrieved faxes successfully",
                         "data": data,
                         "paging": {"total": len(found), "per_page": per_page,
                                    "page": page}},
                   {"X-Total": str(len(found)), "X-Per-Page": str(per_page),
                    "X-Page": str(page)})

    def do_GET(self):
        if not self.authorized():
            return
        u = urlparse(self.path)
        q = parse_qs(u.query)
        self.note({"method": "GET", "path": self.path, "auth": True,
                   "query": {k: v[0] for k, v in q.items()}})
        if u.path == "/v2.1/faxes":
            return self.list_faxes(q)
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
                                    "message": "Metadata for fax",
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
