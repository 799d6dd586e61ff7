#!/usr/bin/env python3
"""Observer of the end-to-end harness: polls the server like an operator would.

Runs inside the server namespace (`ip netns exec nc-srv python3 observe.py ...`)
and talks to the server on its loopback. Every command prints one JSON object
on stdout (the harness reads it) and exits 0 when its expectation held.

Commands:
  wait     poll connectivity_check until it equals an exact expected answer
           (then optionally require it to hold), report the time to detect
  steady   poll once a period for a duration; count answers that differ from
           the expected one and the transitions between distinct answers;
           with --watch-node, also tally that node's /api/v2/status verdict
           on every poll, from the first poll that reads --watch-verdict
  restart  after a server restart: poll /metrics and the check, assert the
           "pending since restart" rules, report the time to healthy
  agents   poll /api/v1/agents/ until it holds a number of entries, as
           kubespray's test playbook does, report the names and the time
  get      fetch one path (status and body), for single assertions
  metric   sum of one metric's samples matching label filters
  mesh-wait    poll /api/v2/status until the mesh's failing pairs are exactly
               an expected set (optionally node verdicts, members, every pair
               probed fine too), then hold; report the time, any pair outside
               the expected ones, and whether the v1 check stayed healthy
  mesh-steady  poll the mesh once a period for a duration: failing pairs,
               members and the v1 check on every poll, probes counted, and
               each node's mesh loss figure at the last poll
  verdict-wait poll /api/v2/status until the node verdicts are exactly an
               expected list (optionally one node's reason starting with a
               prefix), then hold; report the time, that node's reason and
               its agents' families, and whether the v1 check stayed healthy
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request

HEALTHY = "All {n} pods successfully reported back to the server"
FAILING = ("Connectivity check fails. Reason: there are absent or outdated pods; "
           "look up the payload")
CHECK_PATH = "/api/v1/connectivity_check"
STATUS_PATH = "/api/v2/status"


# Never through a proxy from the environment: the server is on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(base, path, timeout=2.0):
    """(status, body text); status 0 when the server did not answer."""
    try:
        with OPENER.open(base + path, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as e:
        return 0, f"no answer: {e}"


def split_list(s):
    return [x for x in (s or "").split(",") if x]


def expected_answer(code, pods, absent, outdated):
    if code == 200:
        return 200, {"Message": HEALTHY.format(n=pods), "Absent": [], "Outdated": []}
    return code, {"Message": FAILING, "Absent": sorted(absent), "Outdated": sorted(outdated)}


def describe(status, body):
    """Short human form of an answer, for logs and the result table."""
    try:
        j = json.loads(body)
    except ValueError:
        return f"{status} {body.strip()[:80]!r}"
    if not isinstance(j, dict):
        return f"{status} {body.strip()[:80]!r}"
    if status == 200 and not j.get("Absent") and not j.get("Outdated"):
        return f"200 {j.get('Message')!r}"
    parts = [str(status)]
    for key in ("Outdated", "Absent"):
        if j.get(key):
            parts.append(f"{key}=[{', '.join(j[key])}]")
    if len(parts) == 1:
        parts.append(repr(j.get("Message")))
    return " ".join(parts)


def brief(status, body):
    """Like describe(), but a list of more than two names becomes a count."""
    try:
        j = json.loads(body)
    except ValueError:
        return describe(status, body)
    if not isinstance(j, dict):
        return describe(status, body)
    parts = [str(status)]
    for key in ("Outdated", "Absent"):
        names = j.get(key) or []
        if len(names) > 2:
            parts.append(f"{key}=[{len(names)} pods]")
        elif names:
            parts.append(f"{key}=[{', '.join(names)}]")
    return " ".join(parts) if len(parts) > 1 else describe(status, body)


def matches(status, body, want_status, want_json):
    """Exact match: status, Message word for word, lists equal and sorted."""
    if status != want_status:
        return False
    try:
        j = json.loads(body)
    except ValueError:
        return False
    return (isinstance(j, dict) and j.get("Message") == want_json["Message"]
            and j.get("Absent") == want_json["Absent"]
            and j.get("Outdated") == want_json["Outdated"])


def verdicts(body):
    """"node1=healthy,node2=unreachable,..." from a /api/v2/status body, in
    the server's node order; None when it is not a status answer."""
    try:
        nodes = json.loads(body)["nodes"]
        return ",".join(f'{n["node"]}={n["verdict"]}' for n in nodes)
    except (ValueError, KeyError, TypeError):
        return None


def fetch_verdicts(base):
    status, body = fetch(base, STATUS_PATH)
    return verdicts(body) if status == 200 else None


def node_view(body, node):
    """One node of a /api/v2/status body: all verdicts, its verdict, reason
    and its agents' `families` ({agent: {"ipv4": s, "ipv6": s} or None});
    None when it is not a status answer naming that node."""
    try:
        nodes = json.loads(body)["nodes"]
        mine = next(n for n in nodes if n["node"] == node)
        return {"verdicts": verdicts(body), "verdict": mine["verdict"], "reason": mine.get("reason", ""),
                "families": {a.get("name"): a.get("families") for a in mine.get("agents") or []}}
    except (ValueError, KeyError, TypeError, StopIteration):
        return None


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {label: value}, float)] from the Prometheus text format."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), labels, value))
    return out


def metric_sum(samples, name, **want):
    """Sum of NAME's samples whose labels include WANT; None when absent."""
    vals = [v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in want.items())]
    return sum(vals) if vals else None


def mesh_view(body):
    """The mesh of a /api/v2/status body: failing pairs as sorted
    "network:from>to:kind" strings ("...:kind@ipv6" for a pair probed over
    IPv6), members per network ("pod=3,host=3"),
    node verdicts, the raw failing entries and the matrix; None when it is
    not a status answer with a mesh."""
    try:
        mesh = json.loads(body)["mesh"]
        failing = mesh["failing_pairs"]
        pairs = sorted(f'{p["network"]}:{p["from"]}>{p["to"]}:{p["kind"]}'
                       + ("@ipv6" if p.get("family") == "ipv6" else "") for p in failing)
        members = ",".join(f'{n["network"]}={n["members"]}' for n in mesh["networks"])
        return {"enabled": mesh["enabled"], "pairs": pairs, "members": members,
                "verdicts": verdicts(body), "failing": failing, "matrix": mesh.get("matrix")}
    except (ValueError, KeyError, TypeError):
        return None


def mesh_loss(body):
    """Each node's mesh probe figures of a /api/v2/status body (its
    `path.mesh`): {node: [loss_ratio, probes, unanswered]}; nodes without
    them are left out, and a body that is no status answer gives {}."""
    try:
        nodes = json.loads(body)["nodes"]
        return {n["node"]: [m["loss_ratio"], m["probes"], m["unanswered"]]
                for n in nodes if (m := (n.get("path") or {}).get("mesh"))}
    except (ValueError, KeyError, TypeError):
        return {}


def matrix_full(matrix):
    """Every ordered pair of both networks probed lately and answered: only
    'o' off the diagonal (a '.' is a pair not probed, or a node off that
    network's ring)."""
    if not isinstance(matrix, dict):
        return False
    n = len(matrix.get("nodes") or [])
    rows = (matrix.get("pod") or []) + (matrix.get("host") or [])
    return n >= 2 and len(rows) == 2 * n and all(len(r) == n and set(r) <= {"-", "o"} for r in rows)


def v1_healthy(status, body):
    """The v1 check says every expected agent reported (any number)."""
    try:
        j = json.loads(body)
    except ValueError:
        return False
    return (status == 200 and isinstance(j, dict) and j.get("Absent") == [] and j.get("Outdated") == []
            and str(j.get("Message", "")).startswith("All "))


class V1Tally:
    """The v1 check's answers over a watch: how many, how many not as
    wanted, and each distinct answer with its count. PODS > 0 wants exactly
    the healthy answer for that many pods, 0 a healthy one for any number."""

    def __init__(self, pods=0):
        self.want = expected_answer(200, pods, [], []) if pods else None
        self.polls = self.bad = 0
        self.answers = {}

    def add(self, status, body):
        self.polls += 1
        if not (matches(status, body, *self.want) if self.want else v1_healthy(status, body)):
            self.bad += 1
        d = brief(status, body)
        self.answers[d] = self.answers.get(d, 0) + 1

    def summary(self):
        return {"polls": self.polls, "not_healthy": self.bad, "answers": self.answers}


def probe_counts(base):
    """netchecker_mesh_probes_total of the probers (direction out): ok, failed."""
    status, text = fetch(base, "/metrics")
    samples = parse_metrics(text) if status == 200 else []
    return {r: metric_sum(samples, "netchecker_mesh_probes_total", direction="out", result=r) or 0
            for r in ("ok", "failed")}


def wait_and_hold(matching, since, deadline, period, hold, what, timeout, on_detect=None):
    """Poll `matching()` every `period` until it is true (by `deadline`),
    calling `on_detect()` then; with `hold`, it must stay true for that many
    seconds more. The result: ok, detect_s (from `since`) and, when not ok,
    a reason naming `what` ("answer", "verdicts", "mesh")."""
    detect = None
    while time.time() < deadline:
        if matching():
            detect = time.time() - since
            break
        time.sleep(period)
    if detect is not None and on_detect:
        on_detect()
    result = {"ok": detect is not None, "detect_s": round(detect, 1) if detect is not None else None}
    if detect is not None and hold > 0:
        end = time.time() + hold
        while time.time() < end:
            time.sleep(period)
            if not matching():
                result.update(ok=False, reason=f"{what} changed within {hold}s of detection")
                break
    if detect is None:
        result["reason"] = f"expected {what} not seen within {timeout}s"
    return result


def cmd_mesh_wait(a):
    want = sorted(split_list(a.pairs))
    allowed = set(want) | set(split_list(a.allow))
    since = a.since or time.time()
    deadline = since + a.timeout
    v1 = V1Tally(a.v1_pods or 0)
    unexpected = {}
    last = None
    polls = 0
    pairs_at = None  # when the failing pairs were first exactly the expected ones

    def matching():
        nonlocal last, polls, pairs_at
        polls += 1
        v1.add(*fetch(a.base, CHECK_PATH))
        status, body = fetch(a.base, STATUS_PATH)
        last = mesh_view(body) if status == 200 else None
        if last is None:
            return False
        for p in last["pairs"]:
            if p not in allowed:
                unexpected[p] = unexpected.get(p, 0) + 1
        if pairs_at is None and last["pairs"] == want:
            pairs_at = time.time()
        return (last["pairs"] == want
                and (not a.verdicts or last["verdicts"] == a.verdicts)
                and (not a.members or last["members"] == a.members)
                and (not a.matrix_full or matrix_full(last["matrix"])))

    at_detect = None

    def detected():
        nonlocal at_detect
        at_detect = last

    result = wait_and_hold(matching, since, deadline, a.period, a.hold, "mesh", a.timeout, detected)
    if unexpected:
        result["ok"] = False
        result.setdefault("reason", "pairs outside the expected ones failed")
    if a.v1_pods is not None and v1.bad:
        result["ok"] = False
        result.setdefault("reason", "the v1 check was not healthy on every poll")
    view = last or {}
    result.update(pairs_s=round(pairs_at - since, 1) if pairs_at is not None else None,
                  pairs=view.get("pairs"), verdicts=view.get("verdicts"), members=view.get("members"),
                  matrix=view.get("matrix"), unexpected=unexpected, polls=polls, v1=v1.summary(),
                  failing=[{k: p.get(k) for k in ("network", "from", "to", "kind", "failures", "error", "reason")}
                           for p in (at_detect or {}).get("failing", [])])
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def cmd_mesh_steady(a):
    before = probe_counts(a.base)
    v1 = V1Tally(a.v1_pods)
    polls = with_pairs = wrong_members = 0
    pairs_seen = {}
    members_seen = []
    end = time.time() + a.duration
    next_poll = time.time()
    last_body = ""
    while time.time() < end:
        v1.add(*fetch(a.base, CHECK_PATH))
        status, body = fetch(a.base, STATUS_PATH)
        view = mesh_view(body) if status == 200 else None
        if view is not None:
            last_body = body
        polls += 1
        if view is None:
            with_pairs += 1
            pairs_seen["no status answer"] = pairs_seen.get("no status answer", 0) + 1
        else:
            if view["pairs"]:
                with_pairs += 1
            for p in view["pairs"]:
                pairs_seen[p] = pairs_seen.get(p, 0) + 1
            if a.members and view["members"] != a.members:
                wrong_members += 1
            if not members_seen or members_seen[-1]["members"] != view["members"]:
                members_seen.append({"members": view["members"], "at": round(time.time(), 2)})
        next_poll += a.period
        time.sleep(max(0.0, next_poll - time.time()))
    after = probe_counts(a.base)
    probes = {r: after[r] - before[r] for r in after}
    ok = (with_pairs == 0 and v1.bad == 0 and wrong_members == 0 and polls > 0
          and probes["ok"] >= a.min_probes)
    print(json.dumps({"ok": ok, "polls": polls, "polls_with_failing_pairs": with_pairs,
                      "pairs_seen": pairs_seen, "members_seen": members_seen,
                      "polls_wrong_members": wrong_members, "probes": probes, "v1": v1.summary(),
                      "mesh_loss": mesh_loss(last_body)}))
    return 0 if ok else 1


def cmd_verdict_wait(a):
    """Poll /api/v2/status until its node verdicts are exactly --verdicts
    (and --node's reason starts with --reason-prefix), then hold; the v1
    check is polled alongside and tallied."""
    since = a.since or time.time()
    deadline = since + a.timeout
    v1 = V1Tally(a.v1_pods or 0)
    allowed = {a.verdicts} | set(x for x in a.allow.split(";") if x)
    unexpected = {}
    between = {}  # the allowed lists other than the expected one, counted
    last = None
    polls = 0

    def matching():
        nonlocal last, polls
        polls += 1
        v1.add(*fetch(a.base, CHECK_PATH))
        status, body = fetch(a.base, STATUS_PATH)
        last = node_view(body, a.node) if status == 200 else None
        seen = last["verdicts"] if last else "no status answer"
        if seen not in allowed:
            unexpected[seen] = unexpected.get(seen, 0) + 1
        elif seen != a.verdicts:
            between[seen] = between.get(seen, 0) + 1
        return (last is not None and last["verdicts"] == a.verdicts
                and str(last["reason"]).startswith(a.reason_prefix))

    at_detect = None

    def detected():
        nonlocal at_detect
        at_detect = last

    result = wait_and_hold(matching, since, deadline, a.period, a.hold, "verdicts", a.timeout, detected)
    if unexpected:
        result["ok"] = False
        result.setdefault("reason", "verdicts outside the expected ones were seen")
    if a.v1_pods is not None and v1.bad:
        result["ok"] = False
        result.setdefault("reason", "the v1 check was not healthy on every poll")
    view = at_detect or last or {}
    result.update(verdicts=(last or {}).get("verdicts"), node_reason=view.get("reason"),
                  families=view.get("families"), unexpected=unexpected, between=between, polls=polls,
                  v1=v1.summary())
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def cmd_wait(a):
    """Poll until the check's answer is exactly the expected one (and, with
    --verdicts, /api/v2/status's node verdicts too), then hold both."""
    want_status, want_json = expected_answer(a.code, a.pods, split_list(a.absent), split_list(a.outdated))
    since = a.since or time.time()
    deadline = since + a.timeout
    last = None
    last_verdicts = None
    v2_polls = 0

    def both_match():
        nonlocal last, last_verdicts, v2_polls
        status, body = fetch(a.base, CHECK_PATH)
        last = describe(status, body)
        if not matches(status, body, want_status, want_json):
            return False
        if not a.verdicts:
            return True
        v2_polls += 1
        last_verdicts = fetch_verdicts(a.base)
        return last_verdicts == a.verdicts

    # The answer must then stay exactly the same for HOLD seconds.
    result = wait_and_hold(both_match, since, deadline, a.period, a.hold, "answer", a.timeout)
    result.update(observed=last, expected=describe(want_status, json.dumps(want_json)))
    if a.verdicts:
        result.update(v2_polls=v2_polls, verdicts=last_verdicts)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def report_counts(base, labels):
    status, text = fetch(base, "/metrics")
    samples = parse_metrics(text) if status == 200 else []
    return {l: metric_sum(samples, "ncagent_report_count_total", agent=l) for l in labels}


def cmd_steady(a):
    want_status, want_json = expected_answer(a.code, a.pods, split_list(a.absent), split_list(a.outdated))
    labels = split_list(a.count_reports)
    counts_before = report_counts(a.base, labels)
    polls = bad = non200 = transitions = 0
    prev = None
    seen = {}
    # The watched node's verdicts from the first poll that read the
    # watched one on (before it, the figures may still be building up).
    watch_first = None
    watch_after = {}
    started = time.time()
    end = started + a.duration
    next_poll = time.time()
    while time.time() < end:
        if a.watch_node:
            vstatus, vbody = fetch(a.base, STATUS_PATH)
            view = node_view(vbody, a.watch_node) if vstatus == 200 else None
            verdict = view["verdict"] if view else f"no answer ({vstatus})"
            if watch_first is None and verdict == a.watch_verdict:
                watch_first = round(time.time() - started, 1)
            if watch_first is not None:
                watch_after[verdict] = watch_after.get(verdict, 0) + 1
        status, body = fetch(a.base, CHECK_PATH)
        d = describe(status, body)
        polls += 1
        if not matches(status, body, want_status, want_json):
            bad += 1
        if status != 200:
            non200 += 1
        if prev is not None and d != prev:
            transitions += 1
        prev = d
        seen[d] = seen.get(d, 0) + 1
        next_poll += a.period
        time.sleep(max(0.0, next_poll - time.time()))
    counts_after = report_counts(a.base, labels)
    # A counter that is missing at the end is a failure, not zero reports.
    reports = {l: None if counts_after[l] is None else counts_after[l] - (counts_before[l] or 0)
               for l in labels}
    ok = bad == 0 and transitions == 0 and all(v is not None and v >= a.min_reports
                                               for v in reports.values())
    out = {"ok": ok, "polls": polls, "mismatches": bad, "non200": non200,
           "transitions": transitions, "answers": seen, "reports": reports,
           "expected": describe(want_status, json.dumps(want_json))}
    if a.watch_node:
        watched = sum(watch_after.values())
        out["watch"] = {"node": a.watch_node, "verdict": a.watch_verdict,
                        "first_s": watch_first, "after": watch_after,
                        "share": round(watch_after.get(a.watch_verdict, 0) / watched, 4) if watched else None}
    print(json.dumps(out))
    return 0 if ok else 1


def cmd_restart(a):
    """Watch a freshly started server: the pending-since-restart rules."""
    want_status, want_json = expected_answer(200, a.pods, [], [])
    since = a.since
    end = since + a.duration
    problems = []
    first_scrape = None
    ok_seen_one = False
    healthy = None
    max_pending = 0
    scrapes = 0
    answers = []  # distinct consecutive check answers, in order
    window_pending = set()  # values of the pending gauge within --pending-window
    while time.time() < end:
        t = time.time()
        status, text = fetch(a.base, "/metrics", timeout=1.0)
        if status == 200:
            scrapes += 1
            if first_scrape is None:
                first_scrape = t
            s = parse_metrics(text)
            absent = metric_sum(s, "netchecker_agents", state="absent")
            outdated = metric_sum(s, "netchecker_agents", state="outdated")
            pending = metric_sum(s, "netchecker_agents", state="pending") or 0
            max_pending = max(max_pending, pending)
            if a.pending_window and a.pending_window[0] <= t - since <= a.pending_window[1]:
                window_pending.add(pending)
            errors = metric_sum(s, "ncagent_error_count_total") or 0
            check_ok = metric_sum(s, "netchecker_check_ok")
            at = f"t+{t - since:.2f}s"
            if absent:
                problems.append(f"{at}: netchecker_agents{{state=\"absent\"}}={absent:g}")
            if outdated:
                problems.append(f"{at}: netchecker_agents{{state=\"outdated\"}}={outdated:g}")
            if errors:
                problems.append(f"{at}: sum(ncagent_error_count_total)={errors:g}")
            if check_ok == 1:
                ok_seen_one = True
            elif ok_seen_one or t - first_scrape > a.check_interval + 0.5:
                # Before the first evaluation the gauge may not be set yet;
                # after it (at most one check interval) it must say 1.
                problems.append(f"{at}: netchecker_check_ok={check_ok}")
        cs, cb = fetch(a.base, CHECK_PATH, timeout=1.0)
        d = brief(cs, cb) if cs else "no answer"
        if not answers or answers[-1] != d:
            answers.append(d)
        if healthy is None and matches(cs, cb, want_status, want_json):
            healthy = time.time() - since
        time.sleep(a.period)
    if healthy is None:
        problems.append(f"check not healthy within {a.duration}s of the restart")
    if scrapes == 0:
        problems.append("no /metrics scrape succeeded")
    # Keep the report short: the first few problems are enough to act on.
    print(json.dumps({"ok": not problems, "healthy_s": round(healthy, 1) if healthy is not None else None,
                      "scrapes": scrapes, "max_pending": max_pending, "answers": answers,
                      "pending_in_window": sorted(window_pending),
                      "problems": problems[:5]}))
    return 0 if not problems else 1


def cmd_agents(a):
    """Poll /api/v1/agents/ every --period until it is a JSON object with at
    least --count entries (kubespray's playbook: `length >= nodes * 2`)."""
    start = time.time()
    names, last = None, None
    while time.time() < start + a.timeout:
        status, body = fetch(a.base, "/api/v1/agents/")
        last = f"{status} {body.strip()[:80]!r}"
        try:
            j = json.loads(body) if status == 200 else None
        except ValueError:
            j = None
        if isinstance(j, dict) and len(j) >= a.count:
            names = sorted(j)
            break
        time.sleep(a.period)
    print(json.dumps({"ok": names is not None, "names": names, "last": last,
                      "after_s": round(time.time() - start, 1) if names is not None else None}))
    return 0 if names is not None else 1


def cmd_get(a):
    status, body = fetch(a.base, a.path)
    print(json.dumps({"status": status, "body": body}))
    return 0


def cmd_metric(a):
    status, text = fetch(a.base, "/metrics")
    want = dict(kv.split("=", 1) for kv in a.labels)
    value = metric_sum(parse_metrics(text), a.name, **want) if status == 200 else None
    print(json.dumps({"status": status, "value": value}))
    return 0 if value is not None else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="http://127.0.0.1:8081")
    sub = p.add_subparsers(dest="cmd", required=True)

    def expectation(sp):
        sp.add_argument("--code", type=int, default=200)
        sp.add_argument("--pods", type=int, required=True, help="expected agent pods (for the healthy sentence)")
        sp.add_argument("--absent", default="")
        sp.add_argument("--outdated", default="")
        sp.add_argument("--period", type=float, default=0.2)

    w = sub.add_parser("wait")
    expectation(w)
    w.add_argument("--since", type=float, help="epoch seconds of the fault (default: now)")
    w.add_argument("--timeout", type=float, required=True)
    w.add_argument("--hold", type=float, default=0)
    w.add_argument("--verdicts", default="",
                   help="also require /api/v2/status's node verdicts to be exactly this (node1=healthy,...)")
    w.set_defaults(fn=cmd_wait)

    s = sub.add_parser("steady")
    expectation(s)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--count-reports", default="", help="agent labels whose report counters must grow")
    s.add_argument("--min-reports", type=float, default=0)
    s.add_argument("--watch-node", default="", help="tally this node's v2 verdict on every poll")
    s.add_argument("--watch-verdict", default="", help="tally from the first poll with this verdict")
    s.set_defaults(fn=cmd_steady)

    r = sub.add_parser("restart")
    r.add_argument("--pods", type=int, required=True)
    r.add_argument("--since", type=float, required=True)
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--check-interval", type=float, required=True)
    r.add_argument("--period", type=float, default=0.25)
    r.add_argument("--pending-window", type=float, nargs=2, metavar=("FROM", "TO"),
                   help="seconds after the restart: collect the pending gauge's values in between")
    r.set_defaults(fn=cmd_restart)

    ag = sub.add_parser("agents")
    ag.add_argument("--count", type=int, required=True)
    ag.add_argument("--timeout", type=float, required=True)
    ag.add_argument("--period", type=float, default=0.2)
    ag.set_defaults(fn=cmd_agents)

    g = sub.add_parser("get")
    g.add_argument("path")
    g.set_defaults(fn=cmd_get)

    m = sub.add_parser("metric")
    m.add_argument("name")
    m.add_argument("labels", nargs="*", help="label=value filters")
    m.set_defaults(fn=cmd_metric)

    mw = sub.add_parser("mesh-wait")
    mw.add_argument("--since", type=float, help="epoch seconds of the fault (default: now)")
    mw.add_argument("--timeout", type=float, required=True)
    mw.add_argument("--hold", type=float, default=0)
    mw.add_argument("--pairs", default="", help="the failing pairs expected, network:from>to:kind[@ipv6],... ('' = none)")
    mw.add_argument("--allow", default="",
                    help="pairs that may still be seen meanwhile (those of the fault being healed)")
    mw.add_argument("--verdicts", default="", help="also require these node verdicts (node1=healthy,...)")
    mw.add_argument("--members", default="", help="also require these members (pod=3,host=3)")
    mw.add_argument("--matrix-full", action="store_true", help="also require every pair probed and answered")
    mw.add_argument("--v1-pods", type=int, help="fail unless every v1 check answer was healthy, for exactly "
                    "this many pods (0: any number)")
    mw.add_argument("--period", type=float, default=0.2)
    mw.set_defaults(fn=cmd_mesh_wait)

    vw = sub.add_parser("verdict-wait")
    vw.add_argument("--since", type=float, help="epoch seconds of the fault (default: now)")
    vw.add_argument("--timeout", type=float, required=True)
    vw.add_argument("--hold", type=float, default=0)
    vw.add_argument("--verdicts", required=True, help="the node verdicts expected (node1=healthy,...)")
    vw.add_argument("--node", default="", help="the node whose reason and families are reported")
    vw.add_argument("--reason-prefix", default="", help="that node's reason must start with this")
    vw.add_argument("--allow", default="", help="verdict lists that may be seen before, ';'-separated "
                    "(any other seen fails the wait)")
    vw.add_argument("--v1-pods", type=int, help="fail unless every v1 check answer was healthy, for exactly "
                    "this many pods (0: any number)")
    vw.add_argument("--period", type=float, default=0.2)
    vw.set_defaults(fn=cmd_verdict_wait)

    ms = sub.add_parser("mesh-steady")
    ms.add_argument("--duration", type=float, required=True)
    ms.add_argument("--period", type=float, default=1.0)
    ms.add_argument("--members", default="", help="require these members on every poll (pod=3,host=3)")
    ms.add_argument("--min-probes", type=float, default=0, help="probes that must have succeeded meanwhile")
    ms.add_argument("--v1-pods", type=int, default=0, help="every v1 answer must be healthy for exactly this "
                    "many pods (0: any number)")
    ms.set_defaults(fn=cmd_mesh_steady)

    a = p.parse_args()
    sys.exit(a.fn(a))


if __name__ == "__main__":
    main()
