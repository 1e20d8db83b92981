"""Check a wrapped model against its adapter table: the claims every family must satisfy.

`verify(model, tokens)` returns the failed checks (empty when the table is exact):
1. no hooks: logits bitwise equal to the plain Hugging Face forward;
2. identity hooks on every hook point: logits bitwise unchanged;
3. every block: hook_resid_pre + hook_attn_out + hook_mlp_out == hook_resid_post, and each block's
   output is the next block's input;
4. weights reproduce activations: the attention input through W_Q/W_K/W_V (+ biases) gives
   hook_q/k/v, hook_z through W_O (+ b_O) gives the output projection's output, and that (through any
   post-sublayer norm and multiplier) gives hook_attn_out; likewise the MLP input through W_gate/W_in
   gives mlp.hook_pre and mlp.hook_post through W_out gives hook_mlp_out;
5. zero-ablating a head's hook_z equals zeroing that head's rows of the output projection;
6. patching every hook point from a clean run into a corrupted one restores the clean logits.
Used by the registry sweep (`interp.adapters.sweep`) and the per-family tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from interp.hooked import HookedModel

# |a - b| <= TOL * (1 + max|b|): tight enough to catch a missing norm or multiplier (an O(1) relative
# error), loose enough for the different kernels (einsum vs F.linear) in each precision
TOL = {torch.float64: 1e-6, torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 3e-2}


def _plain(model: HookedModel, tokens: torch.Tensor) -> torch.Tensor:
    extra = {"use_cache": False} if getattr(model.hf_model.config, "use_cache", None) is not None else {}
    out = model.hf_model(input_ids=tokens, **extra)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def sums_to(parts: list[torch.Tensor], total: torch.Tensor) -> bool:
    """`sum(parts) == total` up to the rounding of adding them in `total`'s precision, elementwise:
    |sum - total| <= 8 eps (|p1| + |p2| + ...). A missing multiplier or norm is far outside that."""
    if any(p.shape != total.shape for p in parts):
        return False
    eps = torch.finfo(total.dtype).eps if total.dtype.is_floating_point else 0.0
    exact = sum(p.detach().double() for p in parts)
    bound = 8 * eps * sum(p.detach().double().abs() for p in parts) + 1e-30
    return bool(((exact - total.detach().double()).abs() <= bound).all())


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to the precision-dependent tolerance `TOL`."""
    if a.shape != b.shape:
        return False
    if b.numel() == 0:
        return True
    tol = TOL.get(b.dtype, 1e-4)
    scale = 1.0 + float(b.detach().abs().max().float())
    return bool(((a.detach().float() - b.detach().float()).abs() <= tol * scale).all())


def _norm(model: HookedModel, path: str | None, layer: int, x: torch.Tensor) -> torch.Tensor:
    return x if path is None else model.module(path, layer)(x)


def _weights(model: HookedModel, cache, o_out: dict[int, torch.Tensor]) -> list[str]:
    arch, c, failures = model.arch, model.cfg, []
    group = c.n_heads // c.n_kv_heads
    for layer in range(c.n_layers):
        pre = cache[f"blocks.{layer}.hook_resid_pre"]
        x = pre if arch.residual == "post_norm" else _norm(model, arch.attn_norm, layer, pre)
        for kind in "QKV":
            got = torch.einsum("bpd,hde->bphe", x, model.weight(f"W_{kind}", layer)) + model.weight(
                f"b_{kind}", layer
            )
            hooked = cache[f"blocks.{layer}.attn.hook_{kind.lower()}"]
            if kind != "Q":
                hooked = hooked.repeat_interleave(group, dim=2)
            if not close(got, hooked):
                failures.append(f"block {layer}: attention input @ W_{kind} != hook_{kind.lower()}")
        z = cache[f"blocks.{layer}.attn.hook_z"]
        projected = torch.einsum("bphe,hed->bpd", z, model.weight("W_O", layer)) + model.weight("b_O", layer)
        if not close(projected, o_out[layer]):
            failures.append(f"block {layer}: hook_z @ W_O + b_O != the output projection's output")
        if arch.residual == "post_norm":
            expected = model.module(arch.attn_norm, layer)(projected + pre) - pre
        else:
            expected = arch.attn_scale * _norm(model, arch.attn_post_norm, layer, projected)
        if not close(expected, cache[f"blocks.{layer}.hook_attn_out"]):
            failures.append(
                f"block {layer}: the output projection's output (post-norm, scaled) != hook_attn_out"
            )
    return failures


def _mlp(model: HookedModel, cache) -> list[str]:
    arch, failures = model.arch, []
    if arch.mlp_out is None:  # MoE: no single hidden layer
        return []
    for layer in range(model.cfg.n_layers):
        pre = cache[f"blocks.{layer}.hook_resid_pre"]
        if arch.residual == "parallel":
            x = _norm(model, arch.mlp_norm or arch.attn_norm, layer, pre)
        else:
            mid = cache[f"blocks.{layer}.hook_resid_mid"]
            x = mid if arch.residual == "post_norm" else _norm(model, arch.mlp_norm, layer, mid)
        first = "W_gate" if arch.mlp_gate is not None else "W_in"
        hidden = x @ model.weight(first, layer) + model.weight("b" + first[1:], layer)
        if not close(hidden, cache[f"blocks.{layer}.mlp.hook_pre"]):
            failures.append(f"block {layer}: MLP input @ {first} != mlp.hook_pre")
        out = cache[f"blocks.{layer}.mlp.hook_post"] @ model.weight("W_out", layer) + model.weight(
            "b_out", layer
        )
        if arch.residual == "post_norm":
            mid = cache[f"blocks.{layer}.hook_resid_mid"]
            expected = model.module(arch.mlp_norm, layer)(out + mid) - mid
        else:
            expected = arch.mlp_scale * _norm(model, arch.mlp_post_norm, layer, out)
        if not close(expected, cache[f"blocks.{layer}.hook_mlp_out"]):
            failures.append(f"block {layer}: mlp.hook_post @ W_out (post-norm, scaled) != hook_mlp_out")
    return failures


@torch.no_grad()
def weight_checks(model: HookedModel, tokens: torch.Tensor) -> list[str]:
    """Check 4 alone (and the MLP's weights likewise): the architecture description reproduces the
    activations. Used by the load-time self-check of structural matches."""
    if model.adapter.arch is None:
        return []
    o_out: dict[int, torch.Tensor] = {}
    handles = [
        model.module(model.arch.o.path, layer).register_forward_hook(
            lambda m, a, out, layer=layer: o_out.__setitem__(layer, out)
        )
        for layer in range(model.cfg.n_layers)
    ]
    try:
        _, cache = model.run_with_cache(tokens, names=lambda n: "pattern" not in n)
    finally:
        for handle in handles:
            handle.remove()
    return _weights(model, cache, o_out) + _mlp(model, cache)


def _head_ablation(model: HookedModel, tokens: torch.Tensor) -> list[str]:
    from interp.interventions import Ablate

    layer, head, d_head = model.cfg.n_layers - 1, 0, model.cfg.d_head
    ablated = model.run_with_interventions(tokens, [Ablate(f"blocks.{layer}.attn.hook_z", heads=(head,))])
    module = model.module(model.arch.o.path, layer)
    dim = 0 if type(module).__name__ == "Conv1D" else 1
    saved = module.weight.detach().clone()
    try:
        with torch.no_grad():
            module.weight.narrow(dim, head * d_head, d_head).zero_()
        reference = _plain(model, tokens)
    finally:
        with torch.no_grad():
            module.weight.copy_(saved)
    return [] if close(ablated, reference) else ["ablating a head's hook_z != zeroing its output weights"]


@torch.no_grad()
def verify(model: HookedModel, tokens: torch.Tensor, corrupted: torch.Tensor) -> list[str]:
    """The failed checks for `model` on `tokens` [batch, pos] (and `corrupted`, same shape); [] if exact."""
    failures: list[str] = []
    plain = _plain(model, tokens)
    if not torch.equal(model(tokens), plain):
        failures.append("no-hook logits differ from the plain forward")
    with model.hooks({name: (lambda t, n: t) for name in model.hook_names()}):
        if not torch.equal(model(tokens), plain):
            failures.append("identity hooks changed the logits")
    o_out: dict[int, torch.Tensor] = {}
    handles = []
    if model.adapter.arch is not None:
        for layer in range(model.cfg.n_layers):
            module = model.module(model.arch.o.path, layer)
            handles.append(
                module.register_forward_hook(lambda m, a, out, layer=layer: o_out.__setitem__(layer, out))
            )
    try:
        logits, cache = model.run_with_cache(tokens, names=lambda n: "pattern" not in n)
    finally:
        for handle in handles:
            handle.remove()
    if not torch.equal(logits, plain):
        failures.append("caching changed the logits")
    for layer in range(model.cfg.n_layers):
        parts = [cache[f"blocks.{layer}.{k}"] for k in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out")]
        if not sums_to(parts, cache[f"blocks.{layer}.hook_resid_post"]):
            failures.append(f"block {layer}: resid_pre + attn_out + mlp_out != resid_post")
        if layer + 1 < model.cfg.n_layers and not torch.equal(
            cache[f"blocks.{layer}.hook_resid_post"], cache[f"blocks.{layer + 1}.hook_resid_pre"]
        ):
            failures.append(f"block {layer}: resid_post is not the next block's resid_pre")
    if model.adapter.arch is not None:
        failures += weight_checks(model, tokens)
        failures += _head_ablation(model, tokens)
    from interp.interventions import Patch

    _, full = model.run_with_cache(tokens)
    patches = [Patch(n, value=full) for n in model.hook_names() if n != "hook_pos_embed"]
    if not close(model.run_with_interventions(corrupted, patches), plain):
        failures.append("patching every hook point from the clean run does not restore the clean logits")
    return failures
