#!/usr/bin/env python3
"""The forger of scenario 9: a process on one node that holds its own
agents' valid tokens (as anything running on that node could read them) and
tries to make another, cut-off node look healthy.

Runs inside a node's namespace and reaches the server by its service name,
as an agent does. Every round (until SIGTERM) it POSTs healthy-looking
reports in the Go agent's JSON (padded, probes fine, `report_interval`
an hour, so one accepted report would keep the victim fresh for two):

  other-pod-token   for each victim name, with the token of the forger's
                    own pod of the same kind (pod network / host network)
  no-token          for each victim name, without Authorization
  rewritten-claims  for each victim name, with an own token whose payload
                    was rewritten to name the victim pod (signature kept)
  own-name          for the forger's own host-network pod, with its own
                    token, but `nodename` the victim's node

After every accepted own-name report it reads /api/v2/status and notes
which node the server filed that report under (the pod's node, never the
node the body names) and whether anything forged shows up on the victim's
node. On SIGTERM it writes one JSON object to --out: answers per attempt
({"403": n, ...}, "0" = no answer) and those observations.
"""

import argparse
import base64
import json
import signal
import time
import urllib.error
import urllib.request

# An hour, the longest interval the server accepts (it refuses longer ones
# with 400): one accepted report would keep its agent fresh for two hours.
FORGED_INTERVAL = 3600

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request(url, body=None, token=None, timeout=2.0):
    """(status, body text); status 0 when no answer came."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers,
                                 method="POST" if body is not None else "GET")
    try:
        with OPENER.open(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as e:
        return 0, f"no answer: {e}"


def go_report(pod, node, ip, server_ip):
    """A healthy report as the original Go agent sends it, padded."""
    now = time.time()
    hostdate = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
    return json.dumps({
        "report_interval": FORGED_INTERVAL, "nodename": node, "podname": pod,
        "hostdate": hostdate, "uptime": 123456,
        "nslookup": {"netchecker-service": [server_ip]},
        "ips": {"eth0": [f"{ip}/24"], "lo": ["127.0.0.1/8", "::1/128"]},
        "network_probes": [{"URL": "http://netchecker-service:8081/api/v1/ping", "ConnectionResult": 1,
                            "HTTPCode": 200, "Total": 3, "ContentTransfer": 0, "TCPConnection": 1,
                            "DNSLookup": 1, "Connect": 1, "ServerProcessing": 1}],
        "zero_extender": [0] * 1500,
    }, separators=(",", ":")).encode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def rewrite_claims(token, pod):
    """The token with its payload rewritten to be bound to POD; the header
    and the signature are the original's, so the signature no longer
    matches."""
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims.setdefault("kubernetes.io", {}).setdefault("pod", {})["name"] = pod
    body = json.dumps(claims, separators=(",", ":")).encode()
    return ".".join([header, b64url_encode(body), signature])


def same_kind(a, b):
    return ("hostnet" in a) == ("hostnet" in b)


def read_token(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the server, e.g. http://netchecker-service:8081")
    p.add_argument("--server-ip", required=True, help="what the forged lookups resolve the service to")
    p.add_argument("--victim-node", required=True)
    p.add_argument("--victim", action="append", required=True, metavar="POD=IP",
                   help="an agent pod of the victim node and its address (repeat)")
    p.add_argument("--own-node", required=True)
    p.add_argument("--own", action="append", required=True, metavar="POD=TOKEN_FILE",
                   help="an agent pod of the forger's node and its token file (repeat)")
    p.add_argument("--period", type=float, default=0.25)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    victims = dict(v.split("=", 1) for v in a.victim)
    own = dict(o.split("=", 1) for o in a.own)
    own_host = next(n for n in own if "hostnet" in n)
    # The own-name report claims the victim's node, with its addresses too.
    victim_host_ip = next((ip for v, ip in victims.items() if "hostnet" in v), a.server_ip)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    answers = {}  # attempt -> {status: count}
    samples = {}  # attempt -> first refusal body
    own_seen = {"accepted": 0, "stored_seen": 0, "filed_under": {}}
    victim_node_forged = 0  # forged reports ever visible on the victim's node
    rounds = 0

    def count(attempt, status, body):
        by = answers.setdefault(attempt, {})
        by[str(status)] = by.get(str(status), 0) + 1
        samples.setdefault(attempt, body.strip()[:160])

    def post(name, body, token):
        return request(f"{a.base}/api/v1/agents/{name}", body, token)

    while not stop:
        rounds += 1
        tokens = {name: read_token(path) for name, path in own.items()}  # re-read, as an agent does
        for victim, ip in victims.items():
            body = go_report(victim, a.victim_node, ip, a.server_ip)
            mine = next(n for n in own if same_kind(n, victim))
            count("other-pod-token", *post(victim, body, tokens[mine]))
            count("no-token", *post(victim, body, None))
            count("rewritten-claims", *post(victim, body, rewrite_claims(tokens[mine], victim)))
        status, text = post(own_host, go_report(own_host, a.victim_node, victim_host_ip, a.server_ip),
                            tokens[own_host])
        count("own-name", status, text)
        if status == 200:
            own_seen["accepted"] += 1
            st, body = request(f"{a.base}/api/v2/status")
            if st == 200:
                for node in json.loads(body).get("nodes", []):
                    for agent in node.get("agents", []):
                        forged = agent.get("report_interval_seconds") == FORGED_INTERVAL
                        if agent.get("name") == own_host and forged:
                            # The real agent overwrites it within a second:
                            # seen when this read came first.
                            own_seen["stored_seen"] += 1
                            under = f'{node.get("node")}/{agent.get("node")}'
                            own_seen["filed_under"][under] = own_seen["filed_under"].get(under, 0) + 1
                        if node.get("node") == a.victim_node and (forged or agent.get("name") not in victims):
                            victim_node_forged += 1
        time.sleep(a.period)

    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"rounds": rounds, "answers": answers, "samples": samples, "own_name": own_seen,
                   "victim_node_forged": victim_node_forged}, f)


if __name__ == "__main__":
    main()
