"""CPU one admission decision costs on the event loop, on a replica alone and on one that merges two other
replicas' loads (services/admission_peers.py): the shared view must not make refusals expensive.

`python -m bench.admission_peers_cost [--out DIR]` writes DIR/results.json (default
bench/results/admission-peers-cpu/). Each case: a tenant far above its share asks again and again (every
decision a refusal), with 1 or 50 tenants holding a backlog on the engine; process CPU per decision, median
of 5 passes of 20,000 decisions.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

from control_plane.services.admission import Admission, Overloaded
from control_plane.services.admission_peers import PeerLoads, snapshot
from tts_contract.fairness import Share

RESULTS = Path(__file__).resolve().parent / "results" / "admission-peers-cpu"
DECISIONS = 20_000
PASSES = 5


def _replica(tenants: int, peers: int) -> Admission:
    admission = Admission(max_wait_s=1.0, min_inflight=1, rng=random.Random(1))
    admission.load("piper").rate = 100.0  # characters/s: 40 characters of backlog are 0.4 s
    for t in range(tenants):
        admission.load("piper").tenant(f"t{t}").weight = 1.0
        admission.started("piper", f"r{t}", 40, tenant=f"t{t}")
    for i in range(200):  # the flooding tenant: 80 s of its own backlog
        admission.started("piper", f"flood{i}", 40, tenant="t0")
    if peers:
        other = Admission(max_wait_s=1.0, min_inflight=1)
        for t in range(tenants):
            other.started("piper", f"o{t}", 40, tenant=f"t{t}")
        view = json.loads(json.dumps(snapshot(other)))
        admission.peers = PeerLoads("bench")
        admission.peers.merge(snapshot(admission), {f"peer{p}": view for p in range(peers)})
    return admission


def _per_decision_us(admission: Admission) -> float:
    share = Share("t0")
    started = time.process_time()
    for _ in range(DECISIONS):
        try:
            admission.admit("piper", "again", 40, share)
        except Overloaded:
            pass
        else:
            raise AssertionError("the flooding tenant was admitted")
    return (time.process_time() - started) / DECISIONS * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cases = []
    for tenants in (1, 50):
        for peers in (0, 2):
            runs = [_per_decision_us(_replica(tenants, peers)) for _ in range(PASSES)]
            cases.append({"tenants_with_backlog": tenants, "other_replicas_merged": peers,
                          "us_per_refusal_median": round(statistics.median(runs), 1),
                          "us_per_refusal_runs": [round(r, 1) for r in runs]})
            print(f"tenants {tenants:3d}, other replicas {peers}: {cases[-1]['us_per_refusal_median']:6.1f} us "
                  "of CPU per refusal")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({
        "command": "python -m bench.admission_peers_cost", "machine": platform.processor() or platform.machine(),
        "decisions_per_pass": DECISIONS, "passes": PASSES, "cases": cases}, indent=2) + "\n")


if __name__ == "__main__":
    main()
