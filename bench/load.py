#!/usr/bin/env python3
"""Load benchmark: Cairn vs. the reference Kinto 26.5.0 vs. a static-JSON ceiling.

Run it through ``bench/load.sh`` (which installs wrk and builds the release
binaries), or directly once those exist::

    python3 bench/load.py --cairn target/release/cairn \
        --ceiling target/bench-ceiling/release/cairn-bench-ceiling

Standard library only.  For each server it: starts it pinned to one core
(``taskset -c 1``) on a free port with its data under a fresh temp dir, seeds
the data through the HTTP API, then runs each workload with ``wrk`` pinned to
the other core (``taskset -c 0``) and reads the server's CPU time (utime +
stime of its process tree, from /proc) before and after each run.  It prints a
markdown table (workload x server) and writes it to a results file.

Everything is tunable with environment variables (see ``--help``); all servers
are killed when the script exits, whatever the reason.
"""

import argparse
import base64
import concurrent.futures
import datetime
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CLK_TCK = os.sysconf("SC_CLK_TCK")
# A run during which other processes took more than this share of either pinned
# core is flagged in the table: its req/s and latencies are not trustworthy.
NOISE_LIMIT = 0.10

WORKLOADS = {
    # name: (title, servers it makes sense for)
    "get_one": "GET one record",
    "post": "POST a ~200-byte record (durable on Cairn)",
    "patch_if_match": "PATCH with If-Match (current ETag)",
    "list_100": "list the first 100 of {records:,} (`?_limit=100`)",
    "since_10": "`_since` returning 10 changes",
    "group_read": "GET a record readable only through a 50-member group",
    "root": "`GET /v1/`",
    "list_filtered": "filtered, sorted listing (`?status=todo&_sort=-last_modified&_limit=100`, half of {records:,} match)",
    "batch_25": "`POST /v1/batch` creating 25 records (durable on Cairn)",
}
# The ceiling answers every request with the same static body, so it is only
# meaningful for GET-like workloads.
CEILING_WORKLOADS = {"get_one", "root"}

OWNER = ("bench-owner", "owner-pass")
READER = ("bench-reader", "reader-pass")
BUCKET = "bench"
BIG = "big"  # 10,000 records: list and _since
SMALL = "small"  # GET one record
POSTS = "posts"  # POST target
PATCHES = "patches"  # one record per PATCH connection
BATCHES = "bulk"  # batch_25 target (not "batches": Kinto refuses any batch path containing "/batch")
BATCH_SIZE = 25  # Kinto's default batch_max_requests
SHARED = "shared"  # readable only through the group
GROUP = "readers"

RECORD_BODY = {
    "title": "Benchmark record with a realistic payload",
    "description": "About two hundred bytes of JSON, like a typical todo item in a sync app.",
    "done": False,
    "tags": ["bench", "load", "cairn"],
    "n": 0,
}


def big_record(i):
    """Record i of the big collection: half of them `todo` (filtered listing)."""
    return dict(RECORD_BODY, n=i, status="todo" if i % 2 == 0 else "done")


def batch_body(path):
    """25 creates in one `POST /v1/batch` (``path`` without ``/v1``)."""
    return {
        "defaults": {"method": "POST", "path": path},
        "requests": [{"body": {"data": dict(RECORD_BODY, n=j)}} for j in range(BATCH_SIZE)],
    }


def env(name, default):
    return os.environ.get(name, default)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def basic(auth):
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

_CHILDREN = []


def _kill_all(*_args):
    for proc in _CHILDREN:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    for proc in _CHILDREN:
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    _CHILDREN.clear()


def _on_signal(signum, _frame):
    _kill_all()
    sys.exit(128 + signum)


def spawn(argv, log_path, cwd=None, extra_env=None):
    env_ = dict(os.environ)
    env_.update(extra_env or {})
    out = open(log_path, "ab")
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env_,
        start_new_session=True,  # own process group: killed as a whole
    )
    out.close()
    _CHILDREN.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc in _CHILDREN:
        _CHILDREN.remove(proc)


def wait_idle(pid, what, limit=180.0):
    """Wait until the server's process tree uses < 5 % CPU over 0.5 s."""
    t0 = time.time()
    last = tree_cpu_seconds(pid)
    while time.time() - t0 < limit:
        time.sleep(0.5)
        now = tree_cpu_seconds(pid)
        if now - last < 0.025:
            break
        last = now
    waited = time.time() - t0
    if waited > 1.5:
        log(f"{what}: waited {waited:.1f}s for the server to go idle")


def cpu_busy_seconds(cpu):
    """Busy time (all processes) of one CPU so far, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                # user nice system idle iowait irq softirq steal ...
                return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK
    return 0.0


def children_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def tree_cpu_seconds(pid):
    """utime + stime (seconds) of pid and all its live descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        # comm may contain spaces: split after the last ')'.
        fields = raw[raw.rindex(")") + 2 :].split()
        ppid = int(fields[1])
        utime, stime = int(fields[11]), int(fields[12])
        stats[int(entry)] = (ppid, utime + stime)
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen or p not in stats:
            continue
        seen.add(p)
        total += stats[p][1]
        todo.extend(c for c, (pp, _) in stats.items() if pp == p)
    return total / CLK_TCK


# ---------------------------------------------------------------------------
# HTTP client for seeding (one keep-alive connection per thread)
# ---------------------------------------------------------------------------


class Client:
    def __init__(self, port, auth=None):
        self.port = port
        self.auth = auth
        self.conn = None

    def request(self, method, path, body=None, headers=None, auth="default"):
        auth = self.auth if auth == "default" else auth
        hdrs = {"Accept": "application/json"}
        if auth:
            hdrs["Authorization"] = basic(auth)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = None
                return resp.status, dict(resp.getheaders()), parsed, raw
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def must(self, expected, method, path, body=None, **kw):
        status, headers, parsed, raw = self.request(method, path, body, **kw)
        if status not in expected:
            raise SeedError(f"{method} {path} -> {status}: {raw[:300]!r}")
        return status, headers, parsed, raw


class SeedError(Exception):
    pass


def wait_ready(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            status, *_ = Client(port).request("GET", "/v1/__heartbeat__")
            if status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    return False


def header(headers, name):
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


# ---------------------------------------------------------------------------
# Seeding through the API
# ---------------------------------------------------------------------------


def seed(port, n_records, patch_conns, group_size):
    """Create everything the workloads need; return the workloads' parameters."""
    t0 = time.time()
    owner = Client(port, OWNER)
    reader = Client(port, READER)
    p = {}

    _, _, root, _ = reader.must({200}, "GET", "/v1/")
    reader_id = (root or {}).get("user", {}).get("id")
    if not reader_id:
        raise SeedError("GET /v1/ with Basic Auth did not return user.id")

    owner.must({200, 201}, "PUT", f"/v1/buckets/{BUCKET}", {"data": {}})
    for coll in (BIG, SMALL, POSTS, PATCHES, BATCHES):
        owner.must({200, 201}, "PUT", f"/v1/buckets/{BUCKET}/collections/{coll}", {"data": {}})

    # GET one record.
    rec = dict(RECORD_BODY, n=1)
    owner.must({200, 201}, "PUT", f"/v1/buckets/{BUCKET}/collections/{SMALL}/records/one", {"data": rec})
    p["get_one"] = f"/v1/buckets/{BUCKET}/collections/{SMALL}/records/one"

    # A 50-member group (the reader and 49 others) that alone grants read.
    members = [reader_id] + [f"basicauth:{i:064x}" for i in range(1, group_size)]
    owner.must({200, 201}, "PUT", f"/v1/buckets/{BUCKET}/groups/{GROUP}", {"data": {"members": members}})
    group_uri = f"/buckets/{BUCKET}/groups/{GROUP}"
    owner.must(
        {200, 201},
        "PUT",
        f"/v1/buckets/{BUCKET}/collections/{SHARED}",
        {"data": {}, "permissions": {"read": [group_uri]}},
    )
    owner.must({200, 201}, "PUT", f"/v1/buckets/{BUCKET}/collections/{SHARED}/records/doc", {"data": rec})
    p["group_read"] = f"/v1/buckets/{BUCKET}/collections/{SHARED}/records/doc"

    # One record per PATCH connection, with its current ETag.
    etags = []
    for i in range(patch_conns):
        _, hdrs, body, _ = owner.must(
            {200, 201},
            "PUT",
            f"/v1/buckets/{BUCKET}/collections/{PATCHES}/records/p{i}",
            {"data": dict(RECORD_BODY, n=i)},
        )
        etag = header(hdrs, "ETag") or f'"{body["data"]["last_modified"]}"'
        etags.append(etag)
    p["patch_if_match"] = (f"/v1/buckets/{BUCKET}/collections/{PATCHES}/records/p", etags)

    # 10,000 records: batch requests if the server has /batch, else concurrent POSTs.
    big_path = f"/v1/buckets/{BUCKET}/collections/{BIG}/records"
    how = seed_big(port, big_path, n_records)
    p["list_100"] = big_path + "?_limit=100"
    p["list_filtered"] = big_path + "?status=todo&_sort=-last_modified&_limit=100"

    # _since returning exactly 10 changes: the 11th newest record's timestamp.
    _, _, listing, _ = owner.must({200}, "GET", big_path + "?_limit=11")
    since = listing["data"][10]["last_modified"]
    p["since_10"] = f"{big_path}?_since={since}"

    p["post"] = f"/v1/buckets/{BUCKET}/collections/{POSTS}/records"
    p["batch_25"] = batch_body(f"/buckets/{BUCKET}/collections/{BATCHES}/records")
    p["root"] = "/v1/"
    log(f"seeded port {port} in {time.time() - t0:.1f}s ({n_records} records via {how})")
    return p


def seed_big(port, path, n):
    owner = Client(port, OWNER)
    # Probe the batch endpoint with one small batch.
    body = {
        "defaults": {"method": "POST", "path": path[len("/v1") :]},
        "requests": [{"body": {"data": big_record(i)}} for i in range(2)],
    }
    status, _, parsed, _ = owner.request("POST", "/v1/batch", body)
    use_batch = (
        status == 200
        and isinstance(parsed, dict)
        and all(r.get("status") == 201 for r in parsed.get("responses", []))
    )
    done = 2 if use_batch else 0
    local = threading.local()

    def client():
        if not hasattr(local, "c"):
            local.c = Client(port, OWNER)
        return local.c

    def post_batch(start, count):
        reqs = [{"body": {"data": big_record(start + j)}} for j in range(count)]
        b = {"defaults": {"method": "POST", "path": path[len("/v1") :]}, "requests": reqs}
        _, _, parsed, raw = client().must({200}, "POST", "/v1/batch", b)
        bad = [r for r in parsed["responses"] if r.get("status") != 201]
        if bad:
            raise SeedError(f"batch seeding: {bad[0]}")

    def post_one(i):
        client().must({201}, "POST", path, {"data": big_record(i)})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        if use_batch:
            size = 25  # Kinto's default batch_max_requests
            jobs = [pool.submit(post_batch, s, min(size, n - s)) for s in range(done, n, size)]
        else:
            jobs = [pool.submit(post_one, i) for i in range(n)]
        for j in jobs:
            j.result()
    return "batch" if use_batch else "concurrent POSTs"


# ---------------------------------------------------------------------------
# wrk scripts
# ---------------------------------------------------------------------------

LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"status_errors":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


# batch_25: a 200 whose sub-responses are not all 2xx is a failure too. Each
# wrk thread counts them in `bad`; done() adds them up.
LUA_DONE_BATCH = r"""
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) bad = 0 end
response = function(status, headers, body)
  if body and string.find(body, '"status"%s*:%s*[45]%d%d') then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  local sub = 0
  for _, t in ipairs(threads) do sub = sub + (t:get("bad") or 0) end
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"status_errors":%d,"socket_errors":%d,"sub_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.status, e.connect + e.read + e.write + e.timeout, sub))
end
"""


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_lua(path, workload, params, auth_header):
    """Generate the wrk script of one workload."""
    hdr = f'wrk.headers["Authorization"] = {lua_string(auth_header)}\n'
    hdr += 'wrk.headers["Accept"] = "application/json"\n'
    done = LUA_DONE
    if workload == "batch_25":
        body = json.dumps(params, separators=(",", ":"))
        script = hdr + textwrap.dedent(
            f"""
            wrk.method = "POST"
            wrk.path = "/v1/batch"
            wrk.body = {lua_string(body)}
            wrk.headers["Content-Type"] = "application/json"
            """
        )
        done = LUA_DONE_BATCH
    elif workload == "post":
        body = json.dumps({"data": RECORD_BODY}, separators=(",", ":"))
        script = hdr + textwrap.dedent(
            f"""
            wrk.method = "POST"
            wrk.path = {lua_string(params)}
            wrk.body = {lua_string(body)}
            wrk.headers["Content-Type"] = "application/json"
            """
        )
    elif workload == "patch_if_match":
        base, etags = params
        etag_table = ", ".join(lua_string(e) for e in etags)
        # One connection per wrk thread, and one record per thread: requests on
        # a connection are strictly sequential, so each PATCH carries the ETag
        # that the previous response returned (no 412s by design; any non-2xx
        # is counted and reported).
        script = hdr + textwrap.dedent(
            f"""
            local etags = {{{etag_table}}}
            local counter = 0
            local next_id = 0
            -- wrk.format replaces wrk.headers by the table it is given: copy them.
            local hdrs = {{}}
            for k, v in pairs(wrk.headers) do hdrs[k] = v end
            hdrs["Content-Type"] = "application/json"
            setup = function(thread)
              thread:set("id", next_id)
              thread:set("etag", etags[next_id + 1])
              next_id = next_id + 1
            end
            request = function()
              counter = counter + 1
              local body = '{{"data":{{"n":' .. counter .. ',"done":' .. (counter % 2 == 0 and "true" or "false") .. '}}}}'
              hdrs["If-Match"] = etag
              return wrk.format("PATCH", {lua_string(base)} .. id, hdrs, body)
            end
            response = function(status, headers, body)
              local e = headers["ETag"] or headers["etag"] or headers["Etag"]
              if e then
                etag = e
              elseif body then
                local lm = string.match(body, '"last_modified"%s*:%s*(%d+)')
                if lm then etag = '"' .. lm .. '"' end
              end
            end
            """
        )
    else:
        script = hdr + f"wrk.path = {lua_string(params)}\n"
    with open(path, "w") as f:
        f.write(script + done)


def run_wrk(port, lua, duration, threads, conns, raw_log):
    argv = [
        "taskset", "-c", env("BENCH_CLIENT_CPU", "0"),
        "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}", "--latency", "--timeout", "10s",
        "-s", lua, f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=int(float(duration.rstrip("s"))) + 120)
    with open(raw_log, "a") as f:
        f.write("$ " + " ".join(argv) + "\n" + out.stdout + out.stderr + "\n")
    for line in out.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            return json.loads(line[len("BENCHJSON ") :])
    raise RuntimeError(f"wrk printed no result (exit {out.returncode}): {out.stderr[-500:]}")


def check_once(port, workload, params, auth):
    """One request by hand, so a broken endpoint is reported, not benchmarked."""
    c = Client(port, auth)
    if workload == "post":
        status, _, body, raw = c.request("POST", params, {"data": RECORD_BODY})
        ok = status == 201
    elif workload == "batch_25":
        status, _, body, raw = c.request("POST", "/v1/batch", params)
        subs = (body or {}).get("responses", []) if isinstance(body, dict) else []
        ok = status == 200 and len(subs) == BATCH_SIZE and all(r.get("status") == 201 for r in subs)
    elif workload == "patch_if_match":
        return True, ""  # checked through wrk's status errors
    else:
        status, _, body, raw = c.request("GET", params)
        ok = status == 200
        if ok and workload == "list_100":
            ok = len(body.get("data", [])) == 100
        if ok and workload == "since_10":
            ok = len(body.get("data", [])) == 10
        if ok and workload == "list_filtered":
            data = body.get("data", [])
            stamps = [r.get("last_modified", 0) for r in data]
            ok = (
                len(data) == 100
                and all(r.get("status") == "todo" for r in data)
                and stamps == sorted(stamps, reverse=True)
            )
    return ok, f"HTTP {status}: {raw[:200]!r}"


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


def start_server(kind, args, workdir):
    port = free_port()
    cpu = env("BENCH_SERVER_CPU", "1")
    logf = os.path.join(workdir, f"{kind}.log")
    if kind == "cairn":
        data = os.path.join(workdir, "cairn-data")
        argv = ["taskset", "-c", cpu, args.cairn, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", data]
        proc = spawn(argv, logf, extra_env={"RUST_LOG": env("RUST_LOG", "warn"), "CAIRN_LOG": env("CAIRN_LOG", "warn")})
        timeout = 60
    elif kind == "kinto":
        argv = ["taskset", "-c", cpu, args.kinto, str(port)]
        # start-kinto creates its venv on first use: that can take a few minutes.
        proc = spawn(argv, logf, extra_env={"KINTO_REF_HOME": env("KINTO_REF_HOME", os.path.join(tempfile.gettempdir(), "kinto-reference-26.5.0"))})
        timeout = 600
    elif kind == "ceiling":
        argv = ["taskset", "-c", cpu, args.ceiling, "--port", str(port)]
        if args.ceiling_body:
            argv += ["--body-file", args.ceiling_body]
        proc = spawn(argv, logf)
        timeout = 30
    else:
        raise ValueError(kind)
    if not wait_ready(port, proc, timeout):
        tail = open(logf, "rb").read()[-2000:].decode(errors="replace")
        stop(proc)
        raise RuntimeError(f"{kind} did not answer /v1/__heartbeat__ within {timeout}s:\n{tail}")
    log(f"{kind} up on port {port} (pid {proc.pid}, pinned to CPU {cpu})")
    return proc, port


def bench_server(kind, args, workdir, workloads, results):
    if kind == "ceiling" and not os.path.exists(args.ceiling or ""):
        log("ceiling binary missing: skipped")
        return
    if kind == "cairn" and not os.path.exists(args.cairn or ""):
        log("cairn binary missing: skipped")
        return
    proc, port = start_server(kind, args, workdir)
    try:
        if kind == "ceiling":
            params = {w: "/v1/" for w in CEILING_WORKLOADS}
        else:
            try:
                params = seed(port, args.records, args.patch_conns, args.group_size)
            except (SeedError, KeyError, IndexError, TypeError, AttributeError) as e:
                log(f"{kind}: seeding failed: {e}")
                for w in workloads:
                    results[(w, kind)] = {"error": f"seeding failed: {str(e)[:120]}"}
                return
            if kind == "cairn" and args.ceiling and not args.ceiling_body:
                # Let the ceiling serve the same bytes as Cairn's GET one record.
                _, _, _, raw = Client(port, OWNER).request("GET", params["get_one"])
                args.ceiling_body = os.path.join(workdir, "get_one_body.json")
                with open(args.ceiling_body, "wb") as f:
                    f.write(raw)
        for w in workloads:
            if kind == "ceiling" and w not in CEILING_WORKLOADS:
                continue
            auth = READER if w == "group_read" else OWNER
            if kind != "ceiling":
                ok, why = check_once(port, w, params[w], auth)
                if not ok:
                    log(f"{kind} {w}: not benchmarked ({why})")
                    results[(w, kind)] = {"error": why[:60]}
                    continue
            lua = os.path.join(workdir, f"{kind}-{w}.lua")
            write_lua(lua, w, params[w], basic(auth))
            if w == "patch_if_match":
                threads = conns = args.patch_conns
            else:
                threads, conns = args.threads, args.conns
            wait_idle(proc.pid, f"{kind} before {w}")
            if args.warmup and args.warmup != "0s" and w != "patch_if_match":
                run_wrk(port, lua, args.warmup, threads, conns, os.path.join(workdir, "wrk-warmup.log"))
                # A slow server still works through the requests that the
                # warm-up left queued when wrk hung up: let it finish them, or
                # the measured run pays for them.
                wait_idle(proc.pid, f"{kind} after the {w} warm-up")
            scpu, ccpu = env("BENCH_SERVER_CPU", "1"), env("BENCH_CLIENT_CPU", "0")
            busy_s0, busy_c0, wrk0 = cpu_busy_seconds(scpu), cpu_busy_seconds(ccpu), children_cpu_seconds()
            cpu0 = tree_cpu_seconds(proc.pid)
            r = run_wrk(port, lua, args.duration, threads, conns, args.raw_log)
            cpu1 = tree_cpu_seconds(proc.pid)
            busy_s1, busy_c1, wrk1 = cpu_busy_seconds(scpu), cpu_busy_seconds(ccpu), children_cpu_seconds()
            secs = r["duration_us"] / 1e6
            # Noise: CPU time that other processes took on each pinned core.
            # (The server's and wrk's threads may also run a little on the
            # other core's softirqs; this is an estimate.)
            r["other_on_server_cpu"] = max(0.0, (busy_s1 - busy_s0) - (cpu1 - cpu0)) / secs if secs else 0.0
            r["other_on_client_cpu"] = max(0.0, (busy_c1 - busy_c0) - (wrk1 - wrk0)) / secs if secs else 0.0
            r["client_util"] = (wrk1 - wrk0) / secs if secs else 0.0
            r["rps"] = r["requests"] / secs if secs else 0.0
            r["cpu_s"] = cpu1 - cpu0
            r["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / r["requests"] if r["requests"] else 0.0
            r["cpu_util"] = (cpu1 - cpu0) / secs if secs else 0.0
            results[(w, kind)] = r
            log(
                f"{kind:8} {w:15} {r['rps']:10.0f} req/s  p50 {fmt_ms(r['p50_us'])}  p99 {fmt_ms(r['p99_us'])}"
                f"  cpu {r['cpu_us_per_req']:.0f} us/req  non-2xx {r['status_errors']}  sock-err {r['socket_errors']}"
                f"  failed sub-requests {r.get('sub_errors', 0)}"
                f"  others on cores: server {100 * r['other_on_server_cpu']:.0f} %, wrk {100 * r['other_on_client_cpu']:.0f} %"
                f" (wrk {100 * r['client_util']:.0f} %)"
            )
    finally:
        stop(proc)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def noise(r):
    """Share of the server's core that other processes took during this run.

    (What others took of wrk's core is logged but not flagged: wrk needs a few
    µs per request and the scheduler gives it that; a server that was
    client-bound shows as server CPU utilisation well under 100 %.)"""
    return r.get("other_on_server_cpu", 0.0)


def fmt_rps(rps):
    return f"{rps:,.0f}" if rps >= 99.5 else f"{rps:.1f}"


def fmt_ms(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def cell(r):
    if r is None:
        return "—"
    if "error" in r:
        return f"n/a ({r['error']})".replace("|", "/")
    errs = r["status_errors"] + r["socket_errors"] + r.get("sub_errors", 0)
    extra = f", **{errs} errors**" if errs else ""
    if noise(r) > NOISE_LIMIT:
        extra += " ⚠"
    return (
        f"{fmt_rps(r['rps'])}/s · p50 {fmt_ms(r['p50_us'])} · p99 {fmt_ms(r['p99_us'])}"
        f" · {r['cpu_us_per_req']:,.0f} µs CPU/req{extra}"
    )


def report(results, servers, workloads, args, started):
    lines = []
    lines.append(f"## Load benchmark, {started:%Y-%m-%d %H:%M} UTC")
    lines.append("")
    lines.append(
        f"wrk {args.duration} per run (warm-up {args.warmup}), {args.threads} thread(s) × {args.conns} connections"
        f" (PATCH: {args.patch_conns} threads × 1 connection each); server on CPU {env('BENCH_SERVER_CPU', '1')},"
        f" wrk on CPU {env('BENCH_CLIENT_CPU', '0')}; {args.records:,} records in the listed collection,"
        f" group of {args.group_size}. Cell: req/s · p50 · p99 · server CPU time per request."
    )
    lines.append("")
    names = {"cairn": "Cairn", "kinto": "Kinto 26.5.0 (memory)", "ceiling": "static hyper (ceiling)"}
    header_cells = ["workload"] + [names[s] for s in servers]
    if "cairn" in servers and "kinto" in servers:
        header_cells.append("Cairn / Kinto")
    lines.append("| " + " | ".join(header_cells) + " |")
    lines.append("|" + "---|" * len(header_cells))
    for w in workloads:
        row = [WORKLOADS[w].format(records=args.records)] + [cell(results.get((w, s))) for s in servers]
        if "cairn" in servers and "kinto" in servers:
            a, b = results.get((w, "cairn")), results.get((w, "kinto"))
            if a and b and "rps" in a and "rps" in b and b["rps"] and a["cpu_us_per_req"]:
                row.append(
                    f"{a['rps'] / b['rps']:.0f}× req/s · {b['cpu_us_per_req'] / a['cpu_us_per_req']:.0f}× less CPU/req"
                    f" · p99 {'lower' if a['p99_us'] < b['p99_us'] else '**higher**'}"
                )
            else:
                row.append("—")
        lines.append("| " + " | ".join(row) + " |")
    noisy = [f"{w}/{s} ({100 * noise(r):.0f} %)" for (w, s), r in results.items() if noise(r) > NOISE_LIMIT]
    if noisy:
        lines.append("")
        lines.append(
            f"⚠ Other processes took more than {100 * NOISE_LIMIT:.0f} % of the server's core during: "
            + ", ".join(noisy)
            + ". Those cells' req/s and latencies are pessimistic; CPU per request is still comparable."
        )
    ceil = results.get(("get_one", "ceiling"))
    cairn = results.get(("get_one", "cairn"))
    if ceil and cairn and "rps" in ceil and "rps" in cairn and ceil["rps"]:
        lines.append("")
        lines.append(
            f"GET one record: Cairn reaches {100 * cairn['rps'] / ceil['rps']:.0f} % of the static-JSON ceiling's req/s"
            f" ({100 * ceil['cpu_us_per_req'] / cairn['cpu_us_per_req']:.0f} % by server CPU per request)."
            if cairn["cpu_us_per_req"]
            else ""
        )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cairn", default=env("CAIRN_BIN", os.path.join(ROOT, "target/release/cairn")))
    ap.add_argument("--kinto", default=env("KINTO_START", os.path.join(ROOT, "..", "shared", "reference", "start-kinto")))
    ap.add_argument("--ceiling", default=env("CEILING_BIN", os.path.join(ROOT, "target/bench-ceiling/release/cairn-bench-ceiling")))
    ap.add_argument("--ceiling-body", default=env("CEILING_BODY", ""), help="file the ceiling serves (default: Cairn's GET-one response)")
    ap.add_argument("--servers", default=env("BENCH_SERVERS", "cairn,kinto,ceiling"))
    ap.add_argument("--workloads", default=env("BENCH_WORKLOADS", ",".join(WORKLOADS)))
    ap.add_argument("--duration", default=env("BENCH_DURATION", "10s"))
    ap.add_argument("--warmup", default=env("BENCH_WARMUP", "2s"))
    ap.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "1")))
    ap.add_argument("--conns", type=int, default=int(env("BENCH_CONNS", "32")))
    ap.add_argument("--patch-conns", type=int, default=int(env("BENCH_PATCH_CONNS", "16")))
    ap.add_argument("--records", type=int, default=int(env("BENCH_RECORDS", "10000")))
    ap.add_argument("--group-size", type=int, default=int(env("BENCH_GROUP_SIZE", "50")))
    ap.add_argument("--out", default=env("BENCH_OUT", ""), help="results file (default: target/bench/results-<time>.md)")
    ap.add_argument("--workdir", default=env("BENCH_TMP", ""), help="parent of the temp dir (must be a real disk)")
    args = ap.parse_args()

    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found (bench/load.sh installs it)")
    servers = [s for s in args.servers.split(",") if s]
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            sys.exit(f"bench: unknown workload {w}; known: {', '.join(WORKLOADS)}")
    # The ceiling serves Cairn's GET-one body, so it runs after Cairn.
    order = {"cairn": 0, "kinto": 1, "ceiling": 2}
    servers.sort(key=lambda s: order.get(s, 9))

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    parent = args.workdir or None
    workdir = tempfile.mkdtemp(prefix="cairn-bench-", dir=parent)
    fstype = subprocess.run(["stat", "-f", "-c", "%T", workdir], capture_output=True, text=True).stdout.strip()
    if fstype in ("tmpfs", "ramfs"):
        shutil.rmtree(workdir)
        os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
        workdir = tempfile.mkdtemp(prefix="cairn-bench-", dir=os.path.join(ROOT, "target"))
        fstype = subprocess.run(["stat", "-f", "-c", "%T", workdir], capture_output=True, text=True).stdout.strip()
    log(f"work dir {workdir} ({fstype}); servers {servers}; workloads {workloads}")
    started = datetime.datetime.now(datetime.timezone.utc)
    out = args.out or os.path.join(ROOT, "target", "bench", f"results-{started:%Y%m%d-%H%M%S}.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    args.raw_log = os.path.splitext(out)[0] + ".wrk.log"
    results = {}
    try:
        for s in servers:
            try:
                bench_server(s, args, workdir, workloads, results)
            except RuntimeError as e:
                log(f"{s}: {e}")
                for w in workloads:
                    results.setdefault((w, s), {"error": "server did not start"})
    finally:
        _kill_all()
    text = report(results, servers, workloads, args, started)
    with open(out, "w") as f:
        f.write(text)
    raw_copy = os.path.splitext(out)[0] + ".json"
    with open(raw_copy, "w") as f:
        json.dump({f"{w}/{s}": r for (w, s), r in results.items()}, f, indent=1)
    print(text)
    log(f"results in {out} (raw: {raw_copy}; wrk output: {args.raw_log})")
    if env("BENCH_KEEP", "") != "1":
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
