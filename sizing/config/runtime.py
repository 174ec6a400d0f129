"""`runtime`: the share of a memory limit each runtime (Node.js, Redis, Go) is told it may use, and the V8 facts
the Node.js share is derived with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sizing.core.model import Model

# V8's young generation is three semi-spaces: the two the scavenger copies between and the new large-object space,
# sized like one (Heap::YoungGenerationSizeFromSemiSpaceSize in V8 11.3 of Node.js 20 and 12.4 of Node.js 22, with
# minor-ms off as it is there; the Node.js docs of --max-semi-space-size say the same). Measured: with
# --max-old-space-size=48, v8.getHeapStatistics().heap_size_limit is 51 MiB with --max-semi-space-size=1 and 96 MiB
# with 16, on both.
V8_YOUNG_SEMI_SPACES = 3
# The semi-space V8 defaults to when Node.js sizes its heap from the host's memory, as it does when it cannot read
# its container's limit (libuv reads a cgroup v2 memory.max from 1.45 on): 16 MiB on 64-bit. Node.js 20.20 and 22.23
# read the limit and default to 1 MiB under a 512 MiB one (measured in a memory cgroup); an image's Node.js version
# is not the plan's to know, so where no flag caps it the plan assumes the larger.
V8_DEFAULT_SEMI_SPACE_MIB = 16
# Room a Node.js process needs beside its V8 heap (runtime.nodejs_native_mib): in a memory cgroup, with a full old
# space and 200 WebSockets echoing 2 KiB every 100 ms, Node.js 20.20 and 22.23 kept serving with 53 MiB or more left
# beside the old space and young generation, stalled (the kernel reclaiming the node binary's own pages) with 45
# MiB in two runs of three, and with 37 or less always, or were OOM-killed (bench/node_memory, README).
NODEJS_NATIVE_MIB = 56


class RuntimeConfig(Model):
    """Fractions of the memory limit given to each runtime, so it reclaims memory before the kernel OOM-kills it."""

    nodejs_heap_fraction: float = Field(
        0.75, gt=0, lt=1, description="Node.js --max-old-space-size as a fraction of the limit (rest: code, buffers)"
    )
    nodejs_semi_space_mib: int = Field(
        1,
        ge=1,
        le=64,
        description="Node.js --max-semi-space-size, set where V8's default young generation (3 × 16 MiB) would not "
        "fit in the limit beside the old space and the native memory; the young generation is 3 × this",
    )
    nodejs_native_mib: int = Field(
        NODEJS_NATIVE_MIB,
        ge=0,
        description="memory of a Node.js process outside the V8 heap that its limit must leave room for: Node's own "
        "allocations, socket buffers and the pages of the node binary it keeps touching (measured: README, Runtime "
        "memory settings)",
    )
    redis_maxmemory_fraction: float = Field(
        0.7, gt=0, lt=1, description="Redis maxmemory as a fraction of the limit (rest: fragmentation, fork)"
    )
    redis_eviction_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] = Field("allkeys-lru", description="Redis maxmemory-policy once maxmemory is reached")
    go_memlimit_fraction: float = Field(
        0.9, gt=0, lt=1, description="GOMEMLIMIT as a fraction of the limit (a soft limit: the GC works harder)"
    )
