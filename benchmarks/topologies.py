"""Run ``runtime-cache bench`` against a spawned Sentinel and a spawned Cluster.

Run: ``python benchmarks/topologies.py [sentinel] [cluster] [-- BENCH FLAGS]``

The deployments are the test harness's (``tests/support``): real redis-server
nodes on free loopback ports, torn down afterwards. Each report is written to
``topology-<kind>.txt`` / ``.json`` in the current directory.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.cluster import ClusterDeployment
from support.sentinel import SentinelDeployment

DEFAULT_FLAGS = ["--duration", "10", "--side-duration", "3", "--throughput-duration", "3"]


async def run(kind: str, flags: list[str]) -> int:
    root = Path(tempfile.mkdtemp(prefix=f"topology-{kind}-"))
    deployment = SentinelDeployment(root) if kind == "sentinel" else ClusterDeployment(root)
    async with deployment:
        command = [
            sys.executable, "-m", "runtime.cache", "bench", "--redis-url", deployment.url,
            "--json", f"topology-{kind}.json", *flags,
        ]  # fmt: skip
        print("$", " ".join(command), flush=True)
        with open(f"topology-{kind}.txt", "w") as report:  # noqa: ASYNC230 - a report file
            process = await asyncio.create_subprocess_exec(
                *command, stdout=report, stderr=subprocess.STDOUT
            )
            return await process.wait()


def main() -> None:
    args = sys.argv[1:]
    kinds = [a for a in args if a in ("sentinel", "cluster")] or ["sentinel", "cluster"]
    flags = args[args.index("--") + 1 :] if "--" in args else DEFAULT_FLAGS
    for kind in kinds:
        print(kind, "exit", asyncio.run(run(kind, flags)))


if __name__ == "__main__":
    main()
