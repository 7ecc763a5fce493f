"""roigate-exporter: the metrics operation, the Prometheus text format
(checked by promtool) and a real Prometheus scraping it."""
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from gateway import BUILD, Gateway, Packet, wait_for, wait_state
from sshd import free_port

METRICS_UID = 4102      # a caller with the metrics role only


def exporter(gw, port):
    p = subprocess.Popen([os.path.join(BUILD, "roigate-exporter"), "-f",
                          gw.conf, "-l", f"127.0.0.1:{port}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    wait_for("the exporter to listen", lambda: scrape(port, quiet=True), 10)
    return p


def scrape(port, quiet=False):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return r.read().decode()
    except OSError:
        if quiet:
            return None
        raise


def samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


@pytest.fixture
def gw(tmp_path):
    g = Gateway(str(tmp_path / "gw"), queue={"workers": "2"},
                roles={"metrics": f"uid:{METRICS_UID}"})
    g.start()
    g.open_to_others()
    yield g
    g.stop()


def test_text_format_passes_promtool(gw, tmp_path):
    gw.add_recipient("records-desk")
    for i in range(3):
        gw.drop(Packet(f"ROI-M-{i}"))
    for i in range(3):
        wait_state(gw, f"ROI-M-{i}", "delivered")
    bad = Packet("ROI-M-BAD")
    del bad.manifest["approval"]
    gw.drop(bad)
    wait_for("the refusal", lambda: "ROI-M-BAD" in gw.rejected_names())
    port = free_port()
    p = exporter(gw, port)
    try:
        text = scrape(port)
        r = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        s = samples(text)
        assert s["roigate_up"] == 1
        assert s['roigate_jobs{state="delivered"}'] == 3
        assert s['roigate_deliveries_total{transport="local"}'] == 3
        assert s["roigate_delivery_latency_seconds_count"] == 3
        assert s["roigate_render_seconds_count"] == 3
        assert s["roigate_pages_rendered_total"] == 12     # 4 pages each
        assert sum(v for k, v in s.items()
                   if k.startswith("roigate_intake_refused_total")) == 1
        assert s['roigate_folder_free_bytes{folder="state"}'] > 0
        assert s['roigate_problem{kind="store"}'] == 0
        assert s["roigate_disclosure_log_last_seq"] == 6   # attempt, delivered
        # No PHI anywhere: the sample patient's name and MRN.
        m = Packet("x").manifest["patient"]
        assert m["name"] not in text and m["mrn"] not in text
        # The counters survive a restart: seeded from the disclosure log.
        gw.stop()
        gw.start()
        s = samples(scrape(port))
        assert s['roigate_deliveries_total{transport="local"}'] == 3
        assert s["roigate_delivery_latency_seconds_count"] == 3
        # roigated down: the exporter still answers, with roigate_up 0.
        gw.stop()
        s = samples(scrape(port))
        assert s["roigate_up"] == 0
        gw.start()
    finally:
        p.terminate()
        p.wait(10)


def test_metrics_role_reads_metrics_only(gw):
    who = (METRICS_UID, METRICS_UID, [])
    r = gw.roictl("--json", "metrics", user=who, check=0)
    assert "jobs" in json.loads(r.stdout)
    gw.roictl("list", user=who, check=77)
    gw.roictl("status", user=who, check=77)


def test_real_prometheus_scrapes_it(gw, tmp_path):
    gw.add_recipient("records-desk")
    gw.drop(Packet("ROI-PROM-1"))
    gw.drop(Packet("ROI-PROM-2"))
    wait_state(gw, "ROI-PROM-1", "delivered")
    wait_state(gw, "ROI-PROM-2", "delivered")
    eport, pport = free_port(), free_port()
    ex = exporter(gw, eport)
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: roigate\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{eport}']\n")
    data = tmp_path / "prom-data"
    prom = subprocess.Popen(
        [shutil.which("prometheus"), f"--config.file={conf}",
         f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{pport}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prom.log", "w"))
    try:
        def delivered():
            q = urllib.parse.urlencode(
                {"query": 'sum(roigate_deliveries_total{transport="local"})'})
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{pport}/api/v1/query?{q}",
                        timeout=5) as r:
                    res = json.load(r)
            except OSError:
                return None
            assert res["status"] == "success"
            v = res["data"]["result"]
            return v and float(v[0]["value"][1]) == 2
        wait_for("Prometheus to scrape the delivered count", delivered, 60,
                 interval=0.5)
    finally:
        prom.terminate()
        prom.wait(20)
        ex.terminate()
        ex.wait(10)
