"""The circuit stage of `interp demo`: EAP-IG on the demo's task, the top edges as a circuit graph.

Registered under the `interp.demo_stages` entry-point group as `40_circuit`. On the first prompts of
the demo's `CachedRun` it scores every edge of the model's computational graph with EAP-IG (a few
forward and backward passes), keeps the strongest edges, checks how much of the task the kept
circuit does on its own, and draws it.
"""

from __future__ import annotations

from circuits.discovery.data import CircuitData
from circuits.discovery.faithfulness import faithfulness
from circuits.discovery.registry import discover
from interp.demo import CachedRun, StageResult

TOP_EDGES = 20


def stage(run: CachedRun) -> StageResult[None]:
    """Discover, check and export the demo model's circuit.

    Example:
        >>> result = stage(run)  # doctest: +SKIP
        >>> result.metrics["faithfulness"]  # doctest: +SKIP
    """
    inputs = run.inputs
    n = min(len(inputs.batch), 16 if inputs.quick else 32)
    data = CircuitData.from_task(inputs.batch.select(range(n)))  # the demo's own prompts, not fresh ones
    scores = discover(inputs.model, data, "eap-ig", steps=3 if inputs.quick else 5)
    circuit = scores.to_circuit(top_n=TOP_EDGES)
    files = [p.name for p in circuit.export(inputs.out, ["png", "json"], stem="circuit")]
    check = faithfulness(inputs.model, data, circuit)
    metrics = {
        "method": "eap-ig",
        "n_graph_edges": len(scores.scores),
        "n_edges": len(circuit.edges),
        "faithfulness": check.faithfulness,
        "completeness": check.completeness,
    }
    top = ", ".join(f"`{edge}`" for edge in list(circuit.edges)[:5])
    text = (
        f"EAP-IG scored all {len(scores.scores)} edges of the computational graph; the top {len(circuit.edges)} "
        f"form the circuit drawn below (strongest: {top}). On its own, with everything else ablated, it keeps "
        f"{check.faithfulness:.0%} of the model's logit difference (faithfulness); ablating it leaves "
        f"{check.completeness:.0%} (completeness, lower is better)."
    )
    return StageResult("Circuit", metrics, tuple(f for f in files if f.endswith(".png")), text)
