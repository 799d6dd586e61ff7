#!/usr/bin/env python3
"""Observer of the two-replica scenario (17): watches server replicas and
the webhook receiver's record. Runs in the server namespace like observe.py
(whose matching it reuses) and prints one JSON object per command.

Commands:
  leaders  which replicas say they lead (netchecker_leader 1), and the
           Lease's holder in the fake API; with --timeout, poll until
           exactly one leads and holds the Lease
  watch    poll one replica's v1 check and its netchecker_leader every
           --period for --duration: every answer tallied against the exact
           healthy one, and when the replica was first seen leading
  warm     after a replica's start: poll its /readyz and v1 check every
           --period; when /readyz first said 200, what it said before, and
           every check answer from then on
  events   the receiver's record: the node verdict changes in arrival
           order, repeats of one change (node, old, new, time) and of one
           `id`
  wait-event  poll the record until a change NODE OLD>NEW arrived after
           --since; its arrival time
"""

import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from observe import (CHECK_PATH, brief, expected_answer, fetch, matches,  # noqa: E402
                     metric_sum, parse_metrics)


def leads(base):
    """1 or 0 (netchecker_leader), None when /metrics does not answer."""
    status, text = fetch(base, "/metrics", timeout=1.0)
    if status != 200:
        return None
    v = metric_sum(parse_metrics(text), "netchecker_leader")
    return None if v is None else int(v)


def lease_holder(url, namespace, name):
    """holderIdentity of the Lease NAMESPACE/NAME in the fake API's
    /fake/leases list ("" when it has none, None when unreadable)."""
    status, body = fetch(url, "", timeout=2.0)
    if status != 200:
        return None
    try:
        for lease in json.loads(body):
            meta = lease.get("metadata") or {}
            if meta.get("namespace") == namespace and meta.get("name") == name:
                return (lease.get("spec") or {}).get("holderIdentity") or ""
    except (ValueError, AttributeError, TypeError):
        return None
    return ""


def parse_replicas(specs):
    """NAME=IDENTITY=BASE -> [(name, identity, base)]."""
    out = []
    for s in specs:
        name, ident, base = s.split("=", 2)
        out.append((name, ident, base))
    return out


def cmd_leaders(a):
    replicas = parse_replicas(a.replica)
    start = time.time()
    while True:
        values = {name: leads(base) for name, _, base in replicas}
        holder = lease_holder(a.leases, a.namespace, a.lease) if a.leases else None
        leading = [name for name, _, _ in replicas if values[name] == 1]
        single = len(leading) == 1 and (not a.leases or holder == dict(
            (n, i) for n, i, _ in replicas)[leading[0]])
        if single or a.timeout <= 0 or time.time() - start > a.timeout:
            break
        time.sleep(a.period)
    print(json.dumps({"ok": single, "leader": leading[0] if single else None, "leading": leading,
                      "values": values, "holder": holder, "after_s": round(time.time() - start, 1)}))
    return 0 if single else 1


def cmd_watch(a):
    want = expected_answer(200, a.pods, [], [])
    polls = bad = non200 = 0
    answers = {}
    lead_at = last_follow_at = None
    lead_values = []  # distinct consecutive netchecker_leader values
    end = time.time() + a.duration
    while time.time() < end:
        t = time.time()
        status, body = fetch(a.base, CHECK_PATH, timeout=1.0)
        polls += 1
        if not matches(status, body, *want):
            bad += 1
        if status != 200:
            non200 += 1
        d = brief(status, body) if status else "no answer"
        answers[d] = answers.get(d, 0) + 1
        v = leads(a.base)
        if not lead_values or lead_values[-1] != v:
            lead_values.append(v)
        if v == 1 and lead_at is None:
            lead_at = time.time()
        elif v == 0 and lead_at is None:
            last_follow_at = t
        time.sleep(max(0.0, a.period - (time.time() - t)))
    print(json.dumps({"ok": bad == 0 and polls > 0, "polls": polls, "not_healthy": bad, "non200": non200,
                      "answers": answers, "lead_at": lead_at, "last_follow_at": last_follow_at,
                      "leader_values": lead_values}))
    return 0 if bad == 0 else 1


def short(status, body):
    if not status:
        return "no answer"
    text = body.strip().replace("\n", " ")
    # "warming up: 6 expected agents have not reported yet; ready once ..."
    return f"{status} {text.split(';')[0][:70]}" if status != 200 else "200"


def cmd_warm(a):
    want = expected_answer(200, a.pods, [], [])
    end = a.since + a.duration
    ready_at = None
    readyz = []  # distinct consecutive /readyz answers, in order
    before = {}  # check answers before ready
    after_polls = after_bad = 0
    after = {}
    unready_after = 0
    while time.time() < end:
        t = time.time()
        rs, rb = fetch(a.base, "/readyz", timeout=1.0)
        d = short(rs, rb)
        if not readyz or readyz[-1] != d:
            readyz.append(d)
        if rs == 200 and ready_at is None:
            ready_at = t
        elif rs != 200 and ready_at is not None:
            unready_after += 1
        cs, cb = fetch(a.base, CHECK_PATH, timeout=1.0)
        cd = brief(cs, cb) if cs else "no answer"
        if ready_at is None:
            before[cd] = before.get(cd, 0) + 1
        else:
            after_polls += 1
            after[cd] = after.get(cd, 0) + 1
            if not matches(cs, cb, *want):
                after_bad += 1
        time.sleep(max(0.0, a.period - (time.time() - t)))
    saw_503 = any(r.startswith("503") for r in readyz)
    ok = ready_at is not None and saw_503 and after_bad == 0 and unready_after == 0 and after_polls > 0
    print(json.dumps({"ok": ok, "ready_s": round(ready_at - a.since, 1) if ready_at else None,
                      "readyz": readyz, "saw_503": saw_503, "before_ready": before,
                      "after_ready": after, "after_polls": after_polls, "after_not_healthy": after_bad,
                      "unready_after": unready_after}))
    return 0 if ok else 1


def read_record(path):
    """[(arrival, body)] of the receiver's file, in arrival order."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except ValueError:
                    out.append((None, line))
                    continue
                out.append((r.get("at"), r.get("body")))
    except FileNotFoundError:
        pass
    return out


def change(body):
    """"node:old>new" of an event body (old "none" for a node first seen)."""
    if not isinstance(body, dict):
        return f"not an event: {str(body)[:60]}"
    return f'{body.get("node")}:{body.get("old_verdict") or "none"}>{body.get("new_verdict")}'


def analyse(record):
    """The changes in arrival order, and the repeats: of one change (node,
    old, new, time) and of one `id` (when the bodies carry ids)."""
    changes, keys, ids = [], {}, {}
    with_id = 0
    for _, body in record:
        changes.append(change(body))
        if isinstance(body, dict):
            k = (body.get("node"), body.get("old_verdict"), body.get("new_verdict"), body.get("time"))
            keys[k] = keys.get(k, 0) + 1
            if body.get("id") is not None:
                with_id += 1
                i = str(body["id"])
                ids[i] = ids.get(i, 0) + 1
    dup_keys = {"|".join(str(x) for x in k): n for k, n in keys.items() if n > 1}
    dup_ids = {i: n for i, n in ids.items() if n > 1}
    return {"posts": len(record), "changes": changes, "duplicate_changes": dup_keys,
            "with_id": with_id, "duplicate_ids": dup_ids}


def cmd_events(a):
    result = analyse(read_record(a.file))
    result["arrivals"] = [at for at, _ in read_record(a.file)]
    want = [c for c in a.expect.split(",") if c] if a.expect is not None else None
    ok = not result["duplicate_changes"] and not result["duplicate_ids"]
    if want is not None:
        ok = ok and result["changes"] == want
    result["ok"] = ok
    print(json.dumps(result))
    return 0 if ok else 1


def cmd_wait_event(a):
    want = f"{a.node}:{a.old}>{a.new}"
    deadline = a.since + a.timeout
    arrived = None
    while True:
        arrived = next((at for at, body in read_record(a.file)
                        if at is not None and at >= a.since and change(body) == want), None)
        if arrived is not None or time.time() >= deadline:
            break
        time.sleep(a.period)
    print(json.dumps({"ok": arrived is not None, "change": want,
                      "after_s": round(arrived - a.since, 1) if arrived is not None else None}))
    return 0 if arrived is not None else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    le = sub.add_parser("leaders")
    le.add_argument("--replica", action="append", required=True, help="NAME=IDENTITY=BASE")
    le.add_argument("--leases", default="", help="the fake API's /fake/leases URL")
    le.add_argument("--namespace", default="netchecker")
    le.add_argument("--lease", default="netchecker-server")
    le.add_argument("--timeout", type=float, default=0)
    le.add_argument("--period", type=float, default=0.1)
    le.set_defaults(fn=cmd_leaders)

    w = sub.add_parser("watch")
    w.add_argument("--base", required=True)
    w.add_argument("--duration", type=float, required=True)
    w.add_argument("--pods", type=int, default=6)
    w.add_argument("--period", type=float, default=0.2)
    w.set_defaults(fn=cmd_watch)

    r = sub.add_parser("warm")
    r.add_argument("--base", required=True)
    r.add_argument("--since", type=float, required=True, help="epoch seconds of the start")
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--pods", type=int, default=6)
    r.add_argument("--period", type=float, default=0.1)
    r.set_defaults(fn=cmd_warm)

    e = sub.add_parser("events")
    e.add_argument("--file", required=True)
    e.add_argument("--expect", help="the changes expected, in order: node:old>new,...")
    e.set_defaults(fn=cmd_events)

    we = sub.add_parser("wait-event")
    we.add_argument("--file", required=True)
    we.add_argument("--node", required=True)
    we.add_argument("--old", required=True)
    we.add_argument("--new", required=True)
    we.add_argument("--since", type=float, required=True)
    we.add_argument("--timeout", type=float, required=True)
    we.add_argument("--period", type=float, default=0.1)
    we.set_defaults(fn=cmd_wait_event)

    a = p.parse_args()
    sys.exit(a.fn(a))


if __name__ == "__main__":
    main()
