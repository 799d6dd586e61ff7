#!/usr/bin/env python3
"""Metric names used by PromQL queries of the Grafana dashboard and the
Prometheus rules, and a comparison with a /metrics scrape.

  metric-names.py used DASHBOARD.json RULES.yaml   -> one name per line
  metric-names.py check DASHBOARD.json RULES.yaml SCRAPE.txt
      exit 1 when a name used is not exposed in SCRAPE.txt (histogram and
      summary suffixes _bucket/_sum/_count count as their family's).

Names are taken from the queries by removing strings, label matchers,
ranges, grouping clauses, Grafana variables, function calls and keywords;
what is left are metric names. Every query must yield at least one name.
"""
import json
import re
import sys

# Series Prometheus itself makes for every target; not on /metrics.
SYNTHETIC = {"up"}
KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "start", "end", "atan2",
}
IDENT = re.compile(r"(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")


def names_in(expr: str) -> set[str]:
    e = expr
    # label_values(metric{...}, label) / label_values(label): keep the series part.
    e = re.sub(r"label_values\(\s*([^,()]+(?:\{[^}]*\})?)\s*,\s*\w+\s*\)", r"\1", e)
    e = re.sub(r"label_values\(\s*\w+\s*\)", "", e)
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', e)
    e = re.sub(r"'(?:\\.|[^'\\])*'", "''", e)
    e = re.sub(r"`[^`]*`", "``", e)
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+-?\w+", " ", e)
    e = re.sub(r"@\s*\S+", " ", e)
    found = set()
    for m in IDENT.finditer(e):
        tok = m.group(1)
        if tok.lower() in KEYWORDS:
            continue
        # scientific notation or durations glued to digits are excluded by the
        # lookbehind; plain numbers never match IDENT.
        found.add(tok)
    return found


def exprs_of_dashboard(path: str) -> list[tuple[str, str]]:
    out = []

    def walk(node, where):
        if isinstance(node, dict):
            title = node.get("title", where)
            if isinstance(node.get("expr"), str):
                out.append((f"dashboard panel '{title}'", node["expr"]))
            q = node.get("query")
            if node.get("type") == "query" and isinstance(q, dict) and isinstance(q.get("query"), str):
                out.append((f"dashboard variable '{node.get('name')}'", q["query"]))
            elif node.get("type") == "query" and isinstance(q, str):
                out.append((f"dashboard variable '{node.get('name')}'", q))
            for k, v in node.items():
                walk(v, title)
        elif isinstance(node, list):
            for v in node:
                walk(v, where)

    walk(json.load(open(path)), "dashboard")
    return out


def exprs_of_rules(path: str) -> list[tuple[str, str]]:
    import yaml  # PyYAML (in .tools/venv via kubernetes-validate)

    doc = yaml.safe_load(open(path))
    return [
        (f"rule '{r.get('alert') or r.get('record')}'", r["expr"])
        for g in doc.get("groups", [])
        for r in g.get("rules", [])
    ]


def used(dashboard: str, rules: str) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for where, expr in exprs_of_dashboard(dashboard) + exprs_of_rules(rules):
        names = names_in(expr)
        if not names:
            sys.exit(f"metric-names: no metric name found in {where}: {expr}")
        for n in names:
            by_name.setdefault(n, []).append(where)
    return by_name


def exposed(scrape: str) -> set[str]:
    names = set()
    for line in open(scrape):
        line = line.strip()
        if not line:
            continue
        if line.startswith("# TYPE "):
            continue
        if line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        if m:
            names.add(m.group(1))
    # A family is exposed when any of its samples is; _bucket/_sum/_count of a
    # histogram or summary are samples, so they are in the set already, and
    # the family name itself is added for queries that use it bare.
    families = {}
    for line in open(scrape):
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            families[m.group(1)] = m.group(2)
    for fam, typ in families.items():
        if typ in ("histogram", "summary") and any(n.startswith(fam + "_") for n in names):
            names.add(fam)
    return names


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == "used":
        for n in sorted(used(sys.argv[2], sys.argv[3])):
            print(n)
        return
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        u = used(sys.argv[2], sys.argv[3])
        have = exposed(sys.argv[4]) | SYNTHETIC
        missing = sorted(n for n in u if n not in have)
        for n in sorted(u):
            state = "MISSING" if n in missing else "ok"
            print(f"  {state:8} {n}  ({len(u[n])} use(s))")
        if missing:
            for n in missing:
                print(f"metric-names: {n} is used by {', '.join(sorted(set(u[n])))} but the server does not expose it", file=sys.stderr)
            sys.exit(1)
        print(f"metric-names: all {len(u)} metric names used are exposed by the server")
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
