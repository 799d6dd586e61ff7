#!/usr/bin/env python3
"""Fail when the modules of a crate import each other in a loop.

Usage: check-module-layers.py SRC_DIR [SRC_DIR ...]
       check-module-layers.py --self-test

Reads every `.rs` file under SRC_DIR (a crate's `src/`), works out which
module each file is, and collects the module's dependencies on its sibling
modules: `use crate::a::...`, `use super::...`, grouped imports
(`use crate::{a, b::c}`) and inline paths (`crate::a::f()`). Comments,
`#[cfg(test)]` modules and `tests.rs` files are left out: tests may reach
anywhere. A module that uses its own submodule, or a submodule that uses
its parent, is structure, not a dependency; edges are kept between the
crate's top-level modules (a submodule counts as its top-level module).
Then any cycle (a module that imports one that imports it back, directly or
through others) is printed and the exit status is 1.

The layers this keeps are drawn in doc/architecture.md; `make lint` runs it.
"""

import os
import re
import sys


def strip_comments(text):
    """Remove // and /* */ comments, keeping string literals intact enough."""
    out, i, n = [], 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j == -1 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i)
            i = n if j == -1 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_test_modules(text):
    """Remove `#[cfg(test)] mod name { ... }` blocks and `#[cfg(test)] mod x;`."""
    out = text
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*(;|\{)")
    while True:
        m = pattern.search(out)
        if not m:
            return out
        if m.group(3) == ";":
            out = out[: m.start()] + out[m.end():]
            continue
        depth, i = 1, m.end()
        while i < len(out) and depth:
            if out[i] == "{":
                depth += 1
            elif out[i] == "}":
                depth -= 1
            i += 1
        out = out[: m.start()] + out[i:]


def module_of(src, path):
    """`src/a/b.rs` -> ['a', 'b']; `src/a/mod.rs` -> ['a']; lib.rs -> []."""
    rel = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        rel = []
    return rel


def use_paths(text):
    """Every path imported by `use` items, with groups expanded."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand(m.group(1).replace(" ", "").replace("\n", "")))
    return paths


def expand(tree):
    """`crate::{a,b::{c,d}}` -> ['crate::a', 'crate::b::c', 'crate::b::d']."""
    brace = tree.find("{")
    if brace == -1:
        return [tree.split(" as ")[0]]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for c in inner:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    parts.append(cur)
    out = []
    for p in parts:
        if p:
            out.extend(expand(prefix + p))
    return out


def resolve(module, path, top_modules):
    """The top-level module a path points into, or None."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        target = segs[1:]
    elif segs[0] == "super":
        base = list(module)
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
        target = base + segs
    elif segs[0] == "self":
        target = list(module) + segs[1:]
    else:
        return None
    if target and target[0] in top_modules:
        return target[0]
    return None


def edges_of(src):
    files = []
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs") and name != "tests.rs":
                files.append(os.path.join(root, name))
    modules = {tuple(module_of(src, f)): f for f in files}
    top = {m[0] for m in modules if m}
    edges = {}
    for module, path in modules.items():
        if not module:
            continue
        text = strip_test_modules(strip_comments(open(path, encoding="utf-8").read()))
        paths = use_paths(text)
        paths += re.findall(r"\b(?:crate|super)(?:::\w+)+", text)
        for p in paths:
            target = resolve(module, p, top)
            if target and target != module[0]:
                edges.setdefault(module[0], set()).add(target)
    return top, edges


def find_cycle(nodes, edges):
    """A cycle as a list of nodes, or None (depth-first search)."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(nodes):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def check(src):
    top, edges = edges_of(src)
    cycle = find_cycle(top, edges)
    if cycle:
        print(f"{src}: modules import each other in a loop: {' -> '.join(cycle)}", file=sys.stderr)
        return False
    count = sum(len(v) for v in edges.values())
    print(f"{src}: {len(top)} modules, {count} dependencies between them, no loop")
    return True


def self_test():
    import tempfile

    def crate(files):
        d = tempfile.mkdtemp()
        for name, body in files.items():
            path = os.path.join(d, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(body)
        return d

    ok = crate({
        "lib.rs": "pub mod a; pub mod b; pub mod c;",
        "a.rs": "use crate::{b::X, c};\n// use crate::c::back;\n#[cfg(test)]\nmod tests { use crate::c::Y; }",
        "b/mod.rs": "pub mod inner; use self::inner::Z; fn f() { crate::c::g(); }",
        "b/inner.rs": "use super::super::c::W;",
        "c.rs": "/* crate::a::nope */ pub fn g() {}",
        "c_tests/tests.rs": "use crate::a::T;",
    })
    loop_group = crate({
        "lib.rs": "pub mod a; pub mod b;",
        "a.rs": "use crate::b::{x::{Y, Z}};",
        "b/mod.rs": "pub mod x;",
        "b/x.rs": "use super::super::a::Q;",
    })
    loop_inline = crate({
        "lib.rs": "pub mod a; pub mod b; pub mod c;",
        "a.rs": "fn f() { crate::b::g(); }",
        "b.rs": "use crate::c as see;",
        "c.rs": "fn h() -> crate::a::T { todo!() }",
    })
    _, edges = edges_of(ok)
    assert edges == {"a": {"b", "c"}, "b": {"c"}}, edges
    assert check(ok)
    assert find_cycle(*edges_of(loop_group)) == ["a", "b", "a"], edges_of(loop_group)
    assert find_cycle(*edges_of(loop_inline)) == ["a", "b", "c", "a"]
    print("check-module-layers: self-test passed")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        sys.exit(0)
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    results = [check(src) for src in sys.argv[1:]]
    sys.exit(0 if all(results) else 1)
