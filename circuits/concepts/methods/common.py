"""Pieces the estimators share: the site they act on, its activations, probes, subspace edits.

Every method reads or edits one *site*: a hook's activation at the last position (`END`), where the
model's prediction is formed. The default hook is the last block's `hook_resid_post`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from circuits.concepts.data import Edits, output_dist
from interp import HookedModel
from interp.errors import InterpError, closest
from interp.tasks.concepts import ConceptSample, concept_index


def site_hook(model: HookedModel, hook: str | None, method: str) -> str:
    """The hook name `method` acts on: `hook`, or the last block's `hook_resid_post` when None.

    Raises `InterpError` naming the closest hooks when the model does not have it.
    """
    name = hook if hook is not None else f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    names = model.hook_names()
    if name not in names:
        near = ", ".join(closest(name, names)) or "see model.hook_names()"
        raise InterpError(
            f"method {method!r} needs the hook {name!r}, which this model does not have (closest: {near})"
        )
    return name


def require_train(train: ConceptSample | None, method: str) -> ConceptSample:
    """`train`, or an `InterpError` saying that `method` needs training data."""
    if train is None or len(train) == 0:
        raise InterpError(
            f"method {method!r} is fitted on concept-labelled training examples; pass train= "
            "(e.g. Concepts().sample(1000, seed=1)) or use a method that needs none"
        )
    return train


def site_acts(model: HookedModel, tokens: Tensor, hook: str, chunk: int = 512) -> Tensor:
    """[batch, d_model]: the activation at `hook`, last position, without gradients."""
    out = []
    with torch.no_grad():
        for start in range(0, tokens.shape[0], chunk):
            ids = tokens[start : start + chunk].to(model.device)
            _, cache = model.run_with_cache(ids, names=[hook], positions=[ids.shape[1] - 1], logits_to_keep=1)
            out.append(cache[hook][:, 0].float().cpu())  # [chunk, d_model]
    return torch.cat(out)


def class_means(x: Tensor, y: Tensor, n_classes: int) -> Tensor:
    """[class, d]: mean of the rows of `x` [n, d] per label `y` [n] (the overall mean for empty classes)."""
    means = x.mean(0).repeat(n_classes, 1)
    for k in range(n_classes):
        if (y == k).any():
            means[k] = x[y == k].mean(0)
    return means


def fit_probe(
    x: Tensor, y: Tensor, n_classes: int, l2: float = 1e-3, steps: int = 100
) -> tuple[Tensor, float]:
    """Multinomial logistic regression on standardised-free `x` [n, d] (LBFGS).

    Returns (weight [class, d], training accuracy). Rows of the weight span the probe's directions.
    """
    mu = x.mean(0)
    xc = x - mu  # [n, d]
    w = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xc @ w.T + b, y) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        acc = ((xc @ w.T + b).argmax(-1) == y).float().mean().item()
    return w.detach(), acc


def orthonormal(rows: Tensor, tol: float = 1e-6) -> Tensor:
    """[k, d] orthonormal rows spanning `rows` [m, d] (numerically null directions dropped)."""
    if rows.numel() == 0:
        return rows
    u, s, vh = torch.linalg.svd(rows, full_matrices=False)
    return vh[s > tol * s.max().clamp_min(1e-30)]


def set_concept_on_site(
    model: HookedModel, edits: Edits, hook: str, projector: Tensor, means: Tensor, value: Tensor
) -> Tensor:
    """[edit, label]: output with the site's concept component replaced by that of `means[value]`.

    At the site, x -> x - (x - means[value]) @ projector.T, where `projector` [d, d] projects onto
    the concept subspace (orthogonal for INLP, oblique for LEACE) and `means` [value, d] are the
    class-conditional means of the site activation on training data. The edit is computed in float64
    and rounded once to the activation's dtype.
    """
    targets = means[value]  # [edit, d_model]
    pos = edits.tokens.shape[1] - 1

    p64 = projector.double()  # oblique projectors of ill-conditioned sites lose the erasure in float32

    def edit(act: Tensor, rows: Tensor) -> Tensor:
        x = act[:, pos].double()  # [chunk, d_model]
        t = targets[rows].to(act.device, torch.float64)
        new = act.clone()
        new[:, pos] = (x - (x - t) @ p64.to(act.device).T).to(act.dtype)
        return new

    return output_dist(model, edits.tokens, edits.sample.task.label_ids, edit=edit, hook=hook)


def subspace_estimate(
    model: HookedModel, edits: Edits, hook: str, projector: Tensor, means: Tensor
) -> Tensor:
    """[edit, label]: the concept set to the target's mean minus set to the source's mean, on the site.

    Both arms erase the example's own concept component, so whatever else leaked into the subspace is
    treated alike and cancels; for a model that reads the concept linearly from exactly that
    subspace, the difference is the exact ICaCE.
    """
    to_target = set_concept_on_site(model, edits, hook, projector, means, edits.target)
    to_source = set_concept_on_site(model, edits, hook, projector, means, edits.source)
    return to_target - to_source


def shift_estimate(model: HookedModel, edits: Edits, hook: str, values: Tensor) -> Tensor:
    """[edit, label]: N(x + values[target] - values[source]) - N(x), the site moved between two values.

    `values` [value, d_model] are each value's representation at the site (e.g. class means projected
    onto a concept subspace); unlike `subspace_estimate` the example keeps its own deviation from
    its value's representation.
    """
    delta = values[edits.target] - values[edits.source]  # [edit, d_model]
    pos = edits.tokens.shape[1] - 1

    def edit(act: Tensor, rows: Tensor) -> Tensor:
        new = act.clone()
        new[:, pos] = act[:, pos] + delta[rows].to(act.device, act.dtype)
        return new

    label_ids = edits.sample.task.label_ids
    return output_dist(model, edits.tokens, label_ids, edit=edit, hook=hook) - output_dist(
        model, edits.tokens, label_ids
    )


def per_concept(edits: Edits) -> list[tuple[str, Tensor]]:
    """(concept name, [edit] bool mask) for each concept present in `edits`."""
    return [(name, edits.mask(name)) for name in edits.concepts()]


def concept_labels(train: ConceptSample, concept: str) -> Tensor:
    """[n] long: each training example's value of `concept`."""
    return train.values[:, concept_index(concept)]


def model_copy(model: HookedModel) -> HookedModel:
    """An independent, trainable copy of `model` (same tokenizer)."""
    clone = HookedModel(copy.deepcopy(model.hf_model), model.tokenizer)
    clone.hf_model.train(False)
    return clone


def freeze(params: Sequence[torch.nn.Parameter]) -> None:
    for p in params:
        p.requires_grad_(False)
