"""Spool intake: good packets are taken and delivered; bad ones are refused
with a reason a clerk can act on, and nothing is lost."""
import os

from gateway import Packet, wait_state


def test_good_packet_is_delivered_and_logged(gw):
    gw.drop(Packet("ROI-T-0001"))
    j = wait_state(gw, "ROI-T-0001", "delivered")
    out = os.path.join(gw.outbox, "records-desk", "ROI-T-0001")
    assert sorted(os.listdir(out)) == ["chest-xray.png", "discharge-summary.txt",
                                       "labs-2026-10.pdf"]
    print(gw.job(j["id"]))
    print(gw.log_entries())
