"""Run node_memory.js's server in a memory cgroup of a given limit, drive it, and report its peak memory, or that it
stalled (the client got no answer) or was OOM-killed: the measurements behind `runtime.nodejs_native_mib`.

`CGROUP=/sys/fs/cgroup/memory/<writable> python3 run.py NODE LIMIT_MIB "FLAGS" CONNECTIONS SECONDS BYTES RETAIN_MIB
PORT`, e.g. `... run.py node 96 "--max-old-space-size=48 --max-semi-space-size=1" 200 8 2048 40 18501`: a cgroup v1
memory hierarchy the caller may create children in (root, on a machine of its own).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

CGROUP = Path(os.environ.get("CGROUP", "/sys/fs/cgroup/memory"))
HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "node_memory.js"


def _uncached_copy(binary: str, target: Path) -> None:
    """A new inode whose pages are not in the page cache: the server's cgroup is charged for reading the binary, as
    a container's is for its image's files."""
    subprocess.run(["cp", binary, str(target)], check=True)
    os.sync()
    fd = os.open(target, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run(binary: str, limit_mib: int, flags: str, conns: int, seconds: int, nbytes: int, retain_mib: int, port: int):
    cgroup = CGROUP / f"r{port}"
    cgroup.mkdir(exist_ok=True)
    (cgroup / "memory.limit_in_bytes").write_text(str(limit_mib << 20))
    node = HERE / f"node{port}"
    _uncached_copy(binary, node)
    env = dict(os.environ, RETAIN_MIB=str(retain_mib))
    command = f"echo $$ > {cgroup}/cgroup.procs; exec {node} {flags} {SCRIPT} server {port}"
    server = subprocess.Popen(["sh", "-c", command], env=env, stderr=subprocess.PIPE, text=True)
    out: dict = {"limit_mib": limit_mib, "flags": flags, "retain_mib": retain_mib}
    try:
        time.sleep(4)
        client = [binary, str(SCRIPT), "client", str(port), str(conns), str(seconds), str(nbytes)]
        try:
            answer = subprocess.run(client, capture_output=True, text=True, timeout=seconds + 40).stdout.strip()
            out["server"] = json.loads(answer) if answer else "no answer"
        except subprocess.TimeoutExpired:
            out["server"] = "client timed out"
        out["alive"] = server.poll() is None
        out["cgroup_max_mib"] = int((cgroup / "memory.max_usage_in_bytes").read_text()) >> 20
        out["oom_kills"] = int((cgroup / "memory.oom_control").read_text().split("oom_kill ")[1].split()[0])
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()
        time.sleep(0.5)
        cgroup.rmdir()
        node.unlink()
    return out


if __name__ == "__main__":
    binary, limit, flags, conns, seconds, nbytes, retain, port = sys.argv[1:]
    result = run(binary, int(limit), flags, int(conns), int(seconds), int(nbytes), int(retain), int(port))
    print(json.dumps(result))
