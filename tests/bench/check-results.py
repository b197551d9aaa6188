#!/usr/bin/python3
"""Check a scripts/bench results directory:
    check-results.py RESULTS_DIR --build BUILD [--strict] [--repetitions N]

Always: results.json is well-formed (schema, machine, versions, every
sample), every scenario appears for every cache mode, and each entry either
has all its samples correct (status ok, answer_correct, a median) or is
marked failed with a non-empty error; chart.png is a PNG; summary.md and
table.txt name every scenario.

Which scenarios must be *correct*: runc-cold and runc-restore always (they
need only runc and CRIU, which install-deps provides). The others depend on
work in progress (stoke's runtime verbs, checkpoint/restore, the loader's
Python binding, the containerd shim), so they must be correct only when
their prerequisite exists: crun installed; `stoke --help` lists run (and
checkpoint/restore for the restore scenarios); the loader binding is found
by the fixture's find-loader-binding.py; containerd is installed and (for
the stoke shim) containerd-shim-stoke-v2 is built. --strict (the acceptance
check, used by the slow suite) requires every scenario to be correct.
Exit 0 pass, 1 fail (each problem on stderr)."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "ai-server")
REPO = os.path.realpath(os.path.join(HERE, "..", ".."))
SCENARIOS = ["runc-cold", "crun-cold", "stoke-cold", "stoke-cold-loader", "runc-restore",
             "stoke-restore", "containerd-runc-cold", "containerd-stoke-cold",
             "containerd-stoke-restore"]
problems = []


def problem(msg):
    problems.append(msg)
    print(f"FAIL: {msg}", file=sys.stderr)


def help_verbs(text):
    """The verbs a `stoke --help` lists: the first word of each line of its
    commands section (the whole text when it has no such section)."""
    part = re.split(r"^commands:\s*$", text, maxsplit=1, flags=re.M | re.I)
    return set(re.findall(r"^\s+([a-z][a-z-]*)\b", part[-1], re.M))


def stoke_verbs(stoke):
    if not os.access(stoke, os.X_OK):
        return set()
    r = subprocess.run([stoke, "--help"], capture_output=True, text=True, timeout=20)
    return help_verbs(r.stdout + r.stderr)


def find_shim(build):
    for d, dirs, files in os.walk(build):
        dirs[:] = [x for x in dirs if not x.startswith(("meson-", "."))]
        if "containerd-shim-stoke-v2" in files:
            return True
    return False


def prerequisites(build):
    """scenario -> whether what it needs exists (so it must be correct)."""
    verbs = stoke_verbs(os.path.join(build, "stoke"))
    run_ok = {"run", "delete"} <= verbs
    restore_ok = run_ok and {"checkpoint", "restore"} <= verbs
    binding = subprocess.run(["/usr/bin/python3", os.path.join(FIXTURE, "find-loader-binding.py"),
                              build, os.path.join(REPO, "loader")],
                             capture_output=True, timeout=300).returncode == 0
    ctd = bool(shutil.which("containerd") and shutil.which("ctr"))
    shim = find_shim(build) or bool(os.environ.get("STOKE_SHIM"))
    return {"runc-cold": True, "runc-restore": True, "crun-cold": bool(shutil.which("crun")),
            "stoke-cold": run_ok, "stoke-cold-loader": run_ok and binding,
            "stoke-restore": restore_ok, "containerd-runc-cold": ctd,
            "containerd-stoke-cold": ctd and shim and run_ok,
            "containerd-stoke-restore": ctd and shim and restore_ok}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--build", required=True)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--repetitions", type=int)
    a = ap.parse_args()

    try:
        with open(os.path.join(a.results, "results.json")) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        problem(f"results.json unreadable: {e}")
        return 1
    if doc.get("schema") != "stoke-bench/1":
        problem(f"schema is {doc.get('schema')!r}")
    for key in ("machine", "versions", "options", "results", "model", "started", "finished", "command"):
        if key not in doc:
            problem(f"results.json lacks {key}")
    m = doc.get("machine", {})
    for key in ("cpu", "cpus", "memory_bytes", "kernel", "disk"):
        if not m.get(key):
            problem(f"machine lacks {key}")
    for rt in ("runc", "crun", "criu", "containerd", "stoke"):
        if not doc.get("versions", {}).get(rt):
            problem(f"versions lacks {rt}")
    if doc.get("interrupted"):
        problem(f"the run was interrupted ({doc['interrupted']})")

    caches = doc.get("options", {}).get("cache", [])
    reps = a.repetitions or doc.get("options", {}).get("repetitions")
    by = {}
    for e in doc.get("results", []):
        by.setdefault((e.get("scenario"), e.get("cache")), []).append(e)
    must = {s: True for s in SCENARIOS} if a.strict else prerequisites(a.build)
    for s in SCENARIOS:
        for c in caches:
            es = by.get((s, c), [])
            if len(es) != 1:
                problem(f"{s} ({c}): {len(es)} entries in results.json, want 1")
                continue
            e = es[0]
            samples = e.get("samples", [])
            if e.get("status") == "ok":
                if not e.get("answer_correct") or len(samples) != reps or \
                        not all(x.get("ok") and x.get("ready_s", 0) > 0 for x in samples):
                    problem(f"{s} ({c}): status ok but not {reps} correct samples: {samples}")
                if not isinstance(e.get("median_s"), float):
                    problem(f"{s} ({c}): status ok without a median")
            elif e.get("status") == "failed":
                if not (isinstance(e.get("error"), str) and e["error"].strip()):
                    problem(f"{s} ({c}): failed without an error message")
                if must.get(s):
                    problem(f"{s} ({c}) must be correct here but failed: {e.get('error')}")
            else:
                problem(f"{s} ({c}): status {e.get('status')!r}")
            print(f"{s:26} {c:4} {e.get('status')}"
                  + (f" {e.get('median_s', 0):.3f} s" if e.get("status") == "ok" else
                     f" ({'required' if must.get(s) else 'prerequisite missing'}): {str(e.get('error'))[:120]}"))

    try:
        with open(os.path.join(a.results, "chart.png"), "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                problem("chart.png is not a PNG")
    except OSError as e:
        problem(f"chart.png: {e}")
    for name in ("summary.md", "table.txt"):
        try:
            with open(os.path.join(a.results, name)) as f:
                text = f.read()
            missing = [s for s in SCENARIOS if s not in text]
            if missing:
                problem(f"{name} does not name {', '.join(missing)}")
        except OSError as e:
            problem(f"{name}: {e}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
