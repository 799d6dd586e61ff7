#!/usr/bin/env python3
"""Unit tests of the observer's answer matching and metric parsing (the
suite's verdicts are only as good as these) and of the forger's forgeries. Run: python3 -m unittest
tests/e2e/lib/test_observe.py (run.sh --selftest runs them too)."""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import observe  # noqa: E402
import forger  # noqa: E402
import ha_observe  # noqa: E402

FAILING = ("Connectivity check fails. Reason: there are absent or outdated pods; "
           "look up the payload")


class Matching(unittest.TestCase):
    def want(self, code, pods=6, absent=(), outdated=()):
        return observe.expected_answer(code, pods, list(absent), list(outdated))

    def test_healthy_exact(self):
        body = json.dumps({"Message": "All 6 pods successfully reported back to the server",
                           "Absent": [], "Outdated": []})
        self.assertTrue(observe.matches(200, body, *self.want(200)))
        self.assertFalse(observe.matches(200, body, *self.want(200, pods=5)))
        self.assertFalse(observe.matches(400, body, *self.want(200)))

    def test_null_lists_are_not_empty_lists(self):
        body = json.dumps({"Message": "All 6 pods successfully reported back to the server",
                           "Absent": None, "Outdated": None})
        self.assertFalse(observe.matches(200, body, *self.want(200)))

    def test_failing_lists_exact_and_sorted(self):
        w = self.want(400, outdated=["netchecker-agent-node2", "netchecker-agent-hostnet-node2"])
        ok = json.dumps({"Message": FAILING, "Absent": [],
                         "Outdated": ["netchecker-agent-hostnet-node2", "netchecker-agent-node2"]})
        unsorted = json.dumps({"Message": FAILING, "Absent": [],
                               "Outdated": ["netchecker-agent-node2", "netchecker-agent-hostnet-node2"]})
        extra = json.dumps({"Message": FAILING, "Absent": ["x"],
                            "Outdated": ["netchecker-agent-hostnet-node2", "netchecker-agent-node2"]})
        self.assertTrue(observe.matches(400, ok, *w))
        self.assertFalse(observe.matches(400, unsorted, *w))
        self.assertFalse(observe.matches(400, extra, *w))
        self.assertFalse(observe.matches(400, ok.replace("payload", "payload."), *w))

    def test_not_json(self):
        self.assertFalse(observe.matches(200, "oops", *self.want(200)))
        self.assertIn("oops", observe.describe(503, "oops"))


class Verdicts(unittest.TestCase):
    def test_status_answer_to_verdict_list(self):
        body = json.dumps({"summary": {}, "nodes": [
            {"node": "node1", "verdict": "healthy", "agents": []},
            {"node": "node2", "verdict": "unreachable", "agents": []}]})
        self.assertEqual(observe.verdicts(body), "node1=healthy,node2=unreachable")

    def test_one_node_with_its_reason_and_families(self):
        body = json.dumps({"summary": {}, "nodes": [
            {"node": "node1", "verdict": "healthy", "reason": "", "agents": []},
            {"node": "node2", "verdict": "family_down", "reason": "IPv6 pod network down: ...",
             "agents": [{"name": "a", "families": {"ipv4": 0.2, "ipv6": 3.1}}, {"name": "b"}]}]})
        v = observe.node_view(body, "node2")
        self.assertEqual(v["verdicts"], "node1=healthy,node2=family_down")
        self.assertEqual(v["verdict"], "family_down")
        self.assertTrue(v["reason"].startswith("IPv6 pod network down"))
        self.assertEqual(v["families"], {"a": {"ipv4": 0.2, "ipv6": 3.1}, "b": None})
        self.assertIsNone(observe.node_view(body, "node9"))
        self.assertIsNone(observe.node_view("not json", "node2"))

    def test_not_a_status_answer(self):
        self.assertIsNone(observe.verdicts("There is no such entry"))
        self.assertIsNone(observe.verdicts(json.dumps({"Message": "x"})))
        self.assertIsNone(observe.verdicts(json.dumps([1])))


class Mesh(unittest.TestCase):
    def status(self, failing=(), members=(3, 3), pod=("-oo", "o-o", "oo-"), host=("-oo", "o-o", "oo-")):
        return json.dumps({"summary": {}, "nodes": [{"node": "node1", "verdict": "healthy", "agents": []}],
                           "mesh": {"enabled": True, "peers": 8, "round": 1, "round_seconds": 1,
                                    "networks": [{"network": "pod", "members": members[0]},
                                                 {"network": "host", "members": members[1]}],
                                    "failing_pairs": list(failing), "nodes": [],
                                    "matrix": {"nodes": ["node1", "node2", "node3"],
                                               "pod": list(pod), "host": list(host)}}})

    def test_pairs_sorted_in_one_spelling(self):
        failing = [{"from": "node2", "to": "node1", "network": "pod", "kind": "unreachable"},
                   {"from": "node1", "to": "node3", "network": "host", "kind": "mtu"}]
        v = observe.mesh_view(self.status(failing, members=(3, 2)))
        self.assertEqual(v["pairs"], ["host:node1>node3:mtu", "pod:node2>node1:unreachable"])
        self.assertEqual(v["members"], "pod=3,host=2")
        self.assertEqual(v["verdicts"], "node1=healthy")

    def test_mesh_loss_per_node_from_path_mesh(self):
        body = json.dumps({"nodes": [
            {"node": "node1", "path": {"loss_ratio": 0.0, "mesh": {"probes": 200, "unanswered": 20,
                                                                  "loss_ratio": 0.1, "rtt_ms": None}}},
            {"node": "node2", "path": {"loss_ratio": 0.0}},
            {"node": "node3"}]})
        self.assertEqual(observe.mesh_loss(body), {"node1": [0.1, 200, 20]})
        self.assertEqual(observe.mesh_loss("no answer"), {})

    def test_not_a_mesh_answer(self):
        self.assertIsNone(observe.mesh_view(json.dumps({"summary": {}, "nodes": []})))
        self.assertIsNone(observe.mesh_view("no answer"))

    def test_a_full_matrix_has_only_answered_pairs(self):
        full = observe.mesh_view(self.status())["matrix"]
        self.assertTrue(observe.matrix_full(full))
        for pod in (("-ox", "o-o", "oo-"), ("-o.", "o-o", "oo-"), ("-om", "o-o", "oo-")):
            self.assertFalse(observe.matrix_full(observe.mesh_view(self.status(pod=pod))["matrix"]), pod)
        self.assertFalse(observe.matrix_full(None))
        self.assertFalse(observe.matrix_full({"nodes": ["node1", "node2"], "pod": ["-o", "o-"], "host": []}))

    def test_v1_healthy_whatever_the_count(self):
        ok = json.dumps({"Message": "All 5 pods successfully reported back to the server",
                         "Absent": [], "Outdated": []})
        self.assertTrue(observe.v1_healthy(200, ok))
        self.assertFalse(observe.v1_healthy(400, ok))
        self.assertFalse(observe.v1_healthy(200, json.dumps({"Message": FAILING, "Absent": ["x"], "Outdated": []})))
        self.assertFalse(observe.v1_healthy(0, "no answer"))


class Forgeries(unittest.TestCase):
    def test_rewritten_claims_keep_header_and_signature(self):
        claims = {"sub": "x", "kubernetes.io": {"pod": {"name": "netchecker-agent-node1", "uid": "u"}}}
        token = ".".join(["aGVhZGVy", forger.b64url_encode(json.dumps(claims).encode()), "c2ln"])
        forged = forger.rewrite_claims(token, "netchecker-agent-node2")
        header, payload, sig = forged.split(".")
        self.assertEqual((header, sig), ("aGVhZGVy", "c2ln"))
        pod = json.loads(forger.b64url_decode(payload))["kubernetes.io"]["pod"]
        self.assertEqual(pod, {"name": "netchecker-agent-node2", "uid": "u"})

    def test_the_report_looks_like_the_go_agents(self):
        r = json.loads(forger.go_report("netchecker-agent-node2", "node2", "198.19.2.2", "198.18.0.2"))
        self.assertEqual((r["podname"], r["nodename"]), ("netchecker-agent-node2", "node2"))
        self.assertEqual(r["report_interval"], forger.FORGED_INTERVAL)
        self.assertEqual(len(r["zero_extender"]), 1500)
        self.assertRegex(r["hostdate"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


class Metrics(unittest.TestCase):
    TEXT = "\n".join([
        "# HELP netchecker_agents agents per state",
        "# TYPE netchecker_agents gauge",
        'netchecker_agents{state="absent"} 0',
        'netchecker_agents{state="pending"} 2',
        'ncagent_error_count_total{agent="node1-host_network"} 1',
        'ncagent_error_count_total{agent="node2-private_network"} 2',
        "netchecker_check_ok 1",
    ])

    def test_sum_with_and_without_labels(self):
        s = observe.parse_metrics(self.TEXT)
        self.assertEqual(observe.metric_sum(s, "netchecker_agents", state="pending"), 2)
        self.assertEqual(observe.metric_sum(s, "ncagent_error_count_total"), 3)
        self.assertEqual(observe.metric_sum(s, "netchecker_check_ok"), 1)
        self.assertIsNone(observe.metric_sum(s, "netchecker_agents", state="outdated"))


class WebhookRecord(unittest.TestCase):
    """Scenario 17 counts the receiver's POSTs: each change exactly once."""

    def event(self, old, new, time="2026-12-02T10:00:00Z", **extra):
        return dict({"node": "node2", "old_verdict": old, "new_verdict": new, "reason": "r",
                     "agents": [], "time": time}, **extra)

    def test_changes_in_arrival_order_without_repeats(self):
        rec = [(1.0, self.event("healthy", "pod_network_down")),
               (5.0, self.event("pod_network_down", "healthy", "2026-12-02T10:00:04Z"))]
        a = ha_observe.analyse(rec)
        self.assertEqual(a["changes"], ["node2:healthy>pod_network_down", "node2:pod_network_down>healthy"])
        self.assertEqual(a["duplicate_changes"], {})
        self.assertEqual((a["with_id"], a["duplicate_ids"]), (0, {}))

    def test_the_same_change_twice_is_a_repeat_even_from_two_senders(self):
        e = self.event("healthy", "pod_network_down")
        a = ha_observe.analyse([(1.0, e), (1.2, dict(e))])
        self.assertEqual(list(a["duplicate_changes"].values()), [2])

    def test_a_later_change_back_and_forth_is_not_a_repeat(self):
        rec = [(1.0, self.event("healthy", "unreachable")),
               (2.0, self.event("unreachable", "healthy", "2026-12-02T10:00:01Z")),
               (3.0, self.event("healthy", "unreachable", "2026-12-02T10:00:02Z"))]
        self.assertEqual(ha_observe.analyse(rec)["duplicate_changes"], {})

    def test_ids_repeated_are_named(self):
        rec = [(1.0, self.event("healthy", "unreachable", id="a")),
               (2.0, self.event("healthy", "unreachable", "2026-12-02T10:00:09Z", id="a"))]
        a = ha_observe.analyse(rec)
        self.assertEqual((a["with_id"], a["duplicate_ids"]), (2, {"a": 2}))
        self.assertEqual(a["duplicate_changes"], {})

    def test_a_first_seen_node_and_a_body_that_is_no_event(self):
        self.assertEqual(ha_observe.change(self.event(None, "healthy")), "node2:none>healthy")
        self.assertTrue(ha_observe.change("garbage").startswith("not an event"))


if __name__ == "__main__":
    unittest.main()
