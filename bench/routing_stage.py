"""How streams spread over several Triton replicas: the control plane's `TritonPool` against gRPC's own
`round_robin` over `dns:///`, on the same real servers.

Four tritonserver processes serve piper, each on its own loopback address with the same ports (as
pods are); a small DNS server on loopback answers for `tritons.bench` with the addresses that are
"published". gRPC's resolver is pointed at it (`dns://127.0.0.1:PORT/tritons.bench:P`, c-ares); the
pool reads the same record list every TRITON_DNS_REFRESH_S. Scenarios, per policy:

- spread: 30 concurrent one-sentence streams; requests per replica from Triton's own counters.
- mixed: 30 requests 0.1 s apart, every third one long; audio seconds each replica produced.
- scale-up: a fourth replica is started and published under load; seconds until it serves a request.
- loss: one replica SIGKILLed while streams run; of the requests started right after, how many fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("GRPC_DNS_RESOLVER", "ares")  # the resolver that honours a DNS server authority

NAME = "tritons.bench"
SHORT = "Replica check number {}."
LONG = " ".join(f"Sentence {i} of a longer answer that keeps one replica busy." for i in range(6))


class LoopbackDns:
    """A minimal authoritative DNS server on 127.0.0.1 (UDP): A records of one name, TTL 1 s."""

    def __init__(self, name: str) -> None:
        self.name = name.lower()
        self.records: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            with contextlib.suppress(Exception):
                self.sock.sendto(self._answer(data), peer)

    def _answer(self, data: bytes) -> bytes:
        query_id, flags = struct.unpack(">HH", data[:4])
        i, labels = 12, []
        while data[i]:
            labels.append(data[i + 1:i + 1 + data[i]].decode().lower())
            i += 1 + data[i]
        qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
        question = data[12:i + 5]
        self.queries += 1
        if ".".join(labels) != self.name:
            return struct.pack(">HHHHHH", query_id, 0x8583 | (flags & 0x0100), 1, 0, 0, 0) + question
        answers = [struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(ip)
                   for ip in (self.records if qtype == 1 else [])]
        header = struct.pack(">HHHHHH", query_id, 0x8580 | (flags & 0x0100), 1, len(answers), 0, 0)
        return header + question + b"".join(answers)

    def close(self) -> None:
        self.sock.close()


def _replicas(log_dir: Path) -> list[Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "control_plane" / "hardening"))
    from fault_helpers import KillableTriton

    from devtools.triton_server import free_ports

    ports = tuple(free_ports(3))
    return [KillableTriton(log_dir / f"r{i}", models=["piper"], host=f"127.0.0.{2 + i}", ports=ports)
            for i in range(4)]


async def _counter(url: str, name: str) -> float:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(url)).text
    except httpx.HTTPError:
        return 0.0
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name.removesuffix("_total") == name and s.labels.get("model") == "piper")


async def _settled(replicas: list[Any], name: str) -> list[float]:
    """Counters once they stop moving (the models apply their own metrics once a second)."""
    values = await asyncio.gather(*(_counter(r.metrics_url, name) for r in replicas))
    for _ in range(10):
        await asyncio.sleep(1.2)
        again = await asyncio.gather(*(_counter(r.metrics_url, name) for r in replicas))
        if again == values:
            break
        values = again
    return list(values)


class _Workload:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.seq = 0
        self.failures: list[str] = []

    async def one(self, text: str | None = None) -> bool:
        self.seq += 1
        try:
            async for _ in self.client.stream_piper(text or SHORT.format(self.seq)):
                pass
            return True
        except Exception as exc:  # counted, not raised: the scenario measures failures
            self.failures.append(f"{type(exc).__name__}: {exc}"[:120])
            return False


def _make_client(policy: str, dns: LoopbackDns, first: Any) -> Any:
    from tritonclient.grpc import aio as grpcclient

    from control_plane.adapters import triton as triton_adapter
    from control_plane.adapters import triton_replicas
    from control_plane.adapters.triton import TritonClient
    from control_plane.adapters.triton_pool import TritonPool
    from control_plane.settings import Settings

    base = dict(triton_http_url=f"http://{NAME}:{first.http_port}", triton_metrics_url=f"http://{NAME}:"
                f"{first.metrics_port}/metrics", triton_dns_refresh_s=5.0, triton_health_interval_s=1.0)
    if policy == "pool":
        settings = Settings(triton_grpc_url=f"dns:///{NAME}:{first.grpc_port}", **base)

        async def resolve(host: str, port: int) -> list[str]:
            return sorted(dns.records)

        return TritonPool(settings, triton_replicas.DnsDiscovery(settings, resolver=resolve))
    target = f"dns://127.0.0.1:{dns.port}/{NAME}:{first.grpc_port}"
    client = TritonClient(Settings(triton_grpc_url=target, **base))
    client._grpc = grpcclient.InferenceServerClient(
        target, channel_args=[*triton_adapter.CHANNEL_ARGS, ("grpc.lb_policy_name", "round_robin")])
    return client


async def _scenario_run(policy: str, replicas: list[Any], dns: LoopbackDns) -> dict[str, Any]:
    from control_plane.adapters.triton_pool import TritonPool

    client = _make_client(policy, dns, replicas[0])
    if isinstance(client, TritonPool):
        await client.start()
    work = _Workload(client)
    out: dict[str, Any] = {"policy": policy}
    three = replicas[:3]
    try:
        await asyncio.gather(*(work.one() for _ in range(3)))  # connections up

        before = await _settled(three, "nv_inference_request_success")
        ok = await asyncio.gather(*(work.one() for _ in range(30)))
        after = await _settled(three, "nv_inference_request_success")
        out["spread"] = {"requests_per_replica": [a - b for a, b in zip(after, before, strict=True)],
                         "ok": sum(ok), "failures": work.failures[:]}
        work.failures.clear()

        before = await _settled(three, "tts_audio_seconds")
        tasks = []
        for i in range(30):
            tasks.append(asyncio.create_task(work.one(LONG if i % 3 == 0 else None)))
            await asyncio.sleep(0.1)
        ok = await asyncio.gather(*tasks)
        after = await _settled(three, "tts_audio_seconds")
        out["mixed"] = {"audio_seconds_per_replica": [round(a - b, 1) for a, b in zip(after, before, strict=True)],
                        "ok": sum(ok), "failures": work.failures[:]}
        work.failures.clear()

        new = replicas[3]
        await asyncio.to_thread(new.start)
        dns.records.append(new.host)
        published = time.monotonic()
        first_served = None
        load: list[asyncio.Task[bool]] = []
        while time.monotonic() - published < 40:
            load += [asyncio.create_task(work.one()) for _ in range(3)]
            await asyncio.sleep(0.5)
            if await _counter(new.metrics_url, "nv_inference_request_success") > 0:
                first_served = round(time.monotonic() - published, 1)
                break
        await asyncio.gather(*load)
        out["scale_up"] = {"seconds_to_first_request": first_served, "watched_s": 40}

        lost = replicas[1]
        running = [asyncio.create_task(work.one(LONG)) for _ in range(6)]
        await asyncio.sleep(1.0)
        failures_before = len(work.failures)
        await asyncio.to_thread(lost.kill)
        after_kill = []
        for _ in range(10):  # 20 new requests over the next 2 s
            after_kill += [asyncio.create_task(work.one()) for _ in range(2)]
            await asyncio.sleep(0.2)
        ok_after = await asyncio.gather(*after_kill)
        ok_running = await asyncio.gather(*running)
        out["loss"] = {"new_requests": len(ok_after), "new_failed": len(ok_after) - sum(ok_after),
                       "running": len(ok_running), "running_failed": len(ok_running) - sum(ok_running),
                       "failures": work.failures[failures_before:]}
    finally:
        await client.close()
    return out


async def _reset(replicas: list[Any], dns: LoopbackDns) -> None:
    """Three replicas up and published, the fourth stopped."""
    replicas[3].stop()
    if replicas[1].server.process.poll() is not None:
        await asyncio.to_thread(replicas[1].start)
    dns.records[:] = [r.host for r in replicas[:3]]
    await asyncio.sleep(2)


def run_routing_stage(args: Any) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    replicas = _replicas(log_dir)
    dns = LoopbackDns(NAME)
    results: list[dict[str, Any]] = []
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda r: r.start(), replicas[:3]))

        async def main() -> None:
            for policy in args.policies:
                await _reset(replicas, dns)
                print(f"== {policy}", flush=True)
                results.append(await _scenario_run(policy, replicas, dns))
                print(results[-1], flush=True)

        asyncio.run(main())
    finally:
        dns.close()
        for r in replicas:
            r.stop()
    return {"scenarios": results, "dns_queries": dns.queries}


def routing_markdown(result: dict[str, Any]) -> str:
    from bench.results import md_table

    rows = []
    for s in result["scenarios"]:
        rows.append([s["policy"], " / ".join(f"{v:g}" for v in s["spread"]["requests_per_replica"]),
                     " / ".join(f"{v:g}" for v in s["mixed"]["audio_seconds_per_replica"]),
                     s["scale_up"]["seconds_to_first_request"] or f"never (watched {s['scale_up']['watched_s']} s)",
                     f"{s['loss']['new_failed']}/{s['loss']['new_requests']}",
                     f"{s['loss']['running_failed']}/{s['loss']['running']}"])
    table = md_table(["policy", "30 concurrent: requests per replica", "mixed: audio s per replica",
                      "new replica: s to first request", "after a kill: new requests failed",
                      "streams running at the kill: failed"], rows)
    return f"## Routing across Triton replicas\n\n{table}\n"
