"""Distributed alignment search (DAS), Boundless DAS and non-linear alignment maps, with random-model controls.

Algorithm (Geiger et al. 2024, "Finding Alignments Between Interpretable Causal Variables and
Distributed Neural Representations"; Wu et al. 2023 for Boundless DAS):
  1. Sample train and test counterfactuals for one variable from the high-level model.
  2. Record the source vectors at the location once (the network stays frozen throughout).
  3. Train the alignment map: run each base with its vector at the location replaced by
     `map.interchange(base_vector, source_vector)` and minimise cross-entropy, over the task's
     answer tokens (what IIA reads), against the high-level counterfactual output (plus the map's
     own penalty, e.g. a subspace-size term). The non-linear map first trains a linear DAS
     rotation (`warm_start_steps`) and starts from it, then trains its couplings.
  4. Report IIA on the test counterfactuals (hard boundary for Boundless DAS).

"The Non-Linear Representation Dilemma" (Sutter et al. 2025) shows that a powerful enough map
reaches high IIA even in a randomly initialised network. So `search` runs the identical search on a
fresh random initialisation of the same architecture (`random_control`) and reports both IIAs and
their gap; only an alignment whose IIA clearly beats its control says something about the model.

    >>> cfg = SearchConfig(method="das", subspace=1, steps=200)
    >>> result = search(model, high_level("hierarchical_equality"), "left", [Location("blocks.0.hook_resid_post", "END")], cfg)
    >>> result.best()  # {"location": ..., "iia": 0.98, "control_iia": 0.52}
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from circuits.abstraction.data import Counterfactuals, counterfactuals
from circuits.abstraction.highlevel.base import TaskModel
from circuits.abstraction.maps import (
    AlignmentMap,
    BoundlessRotation,
    CouplingFlow,
    Rotation,
    anneal,
    n_parameters,
)
from circuits.abstraction.sites import Location, check, gather, position_index, scatter, width
from circuits.configs import SearchConfig
from interp.errors import InterpError
from interp.hooked import HookedModel

logger = logging.getLogger(__name__)


def random_control(model: HookedModel, seed: int = 0) -> HookedModel:
    """A freshly initialised model of the same architecture and config (the dilemma's control).

    Example:
        >>> control = random_control(model, seed=0)
    """
    config = copy.deepcopy(model.hf_model.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = type(model.hf_model)(config)
    hf.to(device=model.device, dtype=model.dtype).eval()
    return HookedModel(hf, model.tokenizer)


def make_map(cfg: SearchConfig, w: int, sources: Tensor, basis: Tensor | None = None) -> AlignmentMap:
    """The alignment map `cfg.method` asks for, for vectors of width `w` (`sources` [n, w] set the
    non-linear map's standardisation and whitening, `basis` [k, w] its swapped coordinates)."""
    if cfg.subspace > w:
        raise InterpError(f"a subspace of size {cfg.subspace} is larger than the activation width {w}")
    if cfg.method == "das":
        return Rotation(w, cfg.subspace, cfg.seed)
    if cfg.method == "boundless":
        return BoundlessRotation(w, cfg.subspace, cfg.seed, cfg.size_penalty)
    if cfg.subspace + 1 >= w:
        raise InterpError(f"the non-linear map needs a subspace smaller than width - 1 = {w - 1}")
    return CouplingFlow(w, cfg.subspace, cfg.hidden, cfg.blocks, cfg.seed, sources=sources, basis=basis)


def _source_vectors(model: HookedModel, data: Counterfactuals, variable: str, loc: Location) -> Tensor:
    with torch.no_grad():
        _, cache = model.run_with_cache(data.source_ids[variable], names=[loc.hook])
    pos = position_index(loc, data.source_positions[variable], len(data))
    return gather(cache[loc.hook], loc, pos)  # [n, width]


def _logits_with_map(
    model: HookedModel, data: Counterfactuals, loc: Location, amap: AlignmentMap, sources: Tensor
) -> Tensor:
    """[batch, vocab] END logits of the bases with `amap` interchanging at `loc`."""
    pos = position_index(loc, data.base_positions, len(data))

    def hook(act: Tensor, name: str) -> Tensor:
        base = gather(act, loc, pos)
        return scatter(act, loc, pos, amap.interchange(base, sources.to(act.device)))

    with model.hooks({loc.hook: hook}):
        logits = model(data.base_ids)
    rows = torch.arange(len(data), device=logits.device)
    return logits[rows, data.base_positions["END"].to(logits.device)]


def train_map(
    model: HookedModel, data: Counterfactuals, variable: str, loc: Location, cfg: SearchConfig
) -> AlignmentMap:
    """Fit an alignment map for `variable` at `loc` on `data` (the model's weights are left untouched).

    Example:
        >>> amap = train_map(model, train, "left", Location("blocks.0.hook_resid_post", "END"), SearchConfig())
    """
    check(model, loc, data.base_positions)
    if loc.head is None and loc.point.head_dim is not None:
        raise InterpError(f"{loc}: an alignment map on a per-head hook needs a head (e.g. [H0]); try --heads")
    sources = _source_vectors(model, data, variable, loc)
    w = width(model, loc)
    basis = None
    if cfg.method == "nonlinear" and cfg.warm_start_steps:
        linear = make_map(replace(cfg, method="das"), w, sources).to(model.device)
        _fit(model, data, loc, linear, sources, cfg, cfg.warm_start_steps)
        basis = linear.basis().detach()
    amap = make_map(cfg, w, sources, basis).to(model.device)
    _fit(model, data, loc, amap, sources, cfg, cfg.steps)
    if isinstance(amap, BoundlessRotation):
        amap.hard = True
    return amap


def _fit(
    model: HookedModel,
    data: Counterfactuals,
    loc: Location,
    amap: AlignmentMap,
    sources: Tensor,
    cfg: SearchConfig,
    steps: int,
) -> None:
    """`steps` Adam steps on `amap` (the model frozen), minimising cross-entropy over the answer tokens."""
    answers = data.task.answer_ids.to(model.device)
    targets = data.targets(model.cfg.d_vocab).to(model.device)[:, answers]  # [n, n_answers]
    mlp_params = [p for n, p in amap.named_parameters() if n.startswith("couplings")]
    other = [p for n, p in amap.named_parameters() if not n.startswith("couplings")]
    groups = [
        {"params": group, "lr": lr} for group, lr in ((other, cfg.lr), (mlp_params, cfg.lr / 10)) if group
    ]
    opt = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(cfg.seed)
    frozen = [p for p in model.hf_model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        amap.train()
        for step in range(steps):
            if isinstance(amap, BoundlessRotation):
                amap.temperature = anneal(*cfg.temperature, step, steps)
            idx = torch.randint(len(data), (min(cfg.batch_size, len(data)),), generator=gen)
            logits = _logits_with_map(model, data.subset(idx), loc, amap, sources[idx])[:, answers]
            loss = F.cross_entropy(logits.float(), targets[idx.to(targets.device)]) + amap.penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 50 == 0:
                logger.debug("%s at %s step %d loss %.4f", cfg.method, loc, step, loss.item())
    finally:
        for p in frozen:
            p.requires_grad_(True)
    amap.eval()


@torch.no_grad()
def evaluate_map(
    model: HookedModel,
    data: Counterfactuals,
    variable: str,
    loc: Location,
    amap: AlignmentMap,
    chunk: int = 512,
) -> float:
    """IIA of `amap` at `loc` on `data`."""
    sources = _source_vectors(model, data, variable, loc)
    agree = []
    for start in range(0, len(data), chunk):
        idx = torch.arange(start, min(len(data), start + chunk))
        part = data.subset(idx)
        codes = data.task.decode(_logits_with_map(model, part, loc, amap, sources[idx]))
        agree.append(data.task.agree(codes, part.labels))
    return torch.cat(agree).float().mean().item()


@dataclass(frozen=True)
class SearchResult:
    """Per location: IIA of the trained model, of its random control (None when not run), and the map
    size; plus the config, the variable, and each trained map's parameter count."""

    variable: str
    config: SearchConfig
    locations: tuple[Location, ...]
    iia: tuple[float, ...]
    control_iia: tuple[float | None, ...]
    sizes: tuple[int, ...]
    map_parameters: int

    def best(self) -> dict:
        """`{location, iia, control_iia, gap}` at the location with the highest IIA."""
        i = max(range(len(self.iia)), key=lambda j: self.iia[j])
        c = self.control_iia[i]
        return {
            "location": str(self.locations[i]),
            "iia": self.iia[i],
            "control_iia": c,
            "gap": None if c is None else self.iia[i] - c,
        }

    def table(self) -> list[dict]:
        rows = []
        for loc, v, c, k in zip(self.locations, self.iia, self.control_iia, self.sizes, strict=True):
            rows.append(
                {
                    "location": str(loc),
                    "iia": v,
                    "control_iia": c,
                    "gap": None if c is None else v - c,
                    "subspace": k,
                }
            )
        return rows

    def to_dict(self) -> dict:
        cfg = asdict(self.config)
        cfg["temperature"] = list(cfg["temperature"])
        return {
            "variable": self.variable,
            "config": cfg,
            "map_parameters": self.map_parameters,
            "locations": self.table(),
            "best": self.best(),
        }


def search(
    model: HookedModel,
    tm: TaskModel,
    variable: str,
    locations: Sequence[Location],
    cfg: SearchConfig = SearchConfig(),
    control: HookedModel | None = None,
) -> SearchResult:
    """Train and test an alignment map for `variable` at each location, on the model and (when
    `cfg.control`) on a random-init control (`random_control(model, cfg.seed)` unless given).

    Example:
        >>> result = search(model, tm, "left", grid(model, data, positions=["END"]), SearchConfig(method="boundless"))
        >>> result.to_dict()["best"]
    """
    if variable not in tm.causal.variables:
        raise InterpError(
            f"{tm.name} has no variable {variable!r}; variables: {', '.join(tm.causal.variables)}"
        )
    if not locations:
        raise InterpError("search needs at least one location")
    train = counterfactuals(tm, [variable], cfg.n_train, seed=cfg.seed)
    test = counterfactuals(tm, [variable], cfg.n_test, seed=cfg.seed + 7919)
    if cfg.control and control is None:
        control = random_control(model, cfg.seed)
    scores, controls, sizes, n_params = [], [], [], 0
    for loc in locations:
        amap = train_map(model, train, variable, loc, cfg)
        scores.append(evaluate_map(model, test, variable, loc, amap))
        sizes.append(amap.size())
        n_params = n_parameters(amap)
        c = None
        if cfg.control and control is not None:
            cmap = train_map(control, train, variable, loc, cfg)
            c = evaluate_map(control, test, variable, loc, cmap)
        controls.append(c)
        logger.info("%s %s at %s: IIA %.3f control %s", cfg.method, variable, loc, scores[-1], c)
    return SearchResult(
        variable, cfg, tuple(locations), tuple(scores), tuple(controls), tuple(sizes), n_params
    )
