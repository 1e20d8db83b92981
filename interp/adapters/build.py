"""Build an adapter's hook-point table from an `Architecture`, so a family is described once.

The canonical points then mean the same in every family: `hook_attn_out` / `hook_mlp_out` are exactly
what is added to the residual stream (after any post-sublayer norm and residual multiplier), `hook_z`
is the input of the output projection, and `hook_q/k/v` are the projections' outputs per head.
"""

from __future__ import annotations

from interp.adapters.spec import (
    Adapter,
    Architecture,
    Direct,
    Fused,
    Pattern,
    PerToken,
    Point,
    Proj,
    Scaled,
    Site,
    SumWithBase,
)


def _head_point(proj: Proj, heads: str) -> Point:
    site = Site(proj.path, "out")
    if proj.layout is None:
        return Direct(site, heads=heads)
    return Fused(site, proj.part or 0, proj.layout)


def _proj_out(proj: Proj) -> Point:
    site = Site(proj.path, "out")
    return Direct(site) if proj.layout is None else Fused(site, proj.part or 0, proj.layout)


def _added(path: str, factor: float) -> Point:
    site = Site(path, "out")
    return Direct(site) if factor == 1.0 else Scaled(site, factor)


def from_architecture(
    family: str, arch: Architecture, n_kv_heads: int | None = None, **overrides: Point | str
) -> Adapter:
    """The adapter for `arch`. `overrides` replace block points by kind (`"attn.hook_pattern"`), or
    mark them absent with a string saying why; `n_kv_heads` overrides the config's count."""
    if arch.residual == "post_norm":
        raise ValueError("post-norm (BERT-style) blocks need their own table: see interp/adapters/bert.py")
    block = f"{arch.layers}.{{l}}"
    resid_pre = Site(block, "in")
    attn_out = _added(arch.attn_contribution(), arch.attn_scale)
    if arch.residual == "parallel":
        resid_mid: Point | str = (
            f"{family} adds attention and MLP in parallel: there is no resid_mid (both read "
            "hook_resid_pre); use hook_attn_out / hook_mlp_out instead."
        )
    else:
        read = Site(arch.mlp_norm, "in") if arch.mlp_norm else None
        resid_mid = SumWithBase(Site(arch.attn_contribution(), "out"), resid_pre, read, arch.attn_scale)
    moe = arch.mlp_out is None
    mlp_pre_proj = arch.mlp_gate or arch.mlp_in
    points: dict[str, Point | str] = {
        "hook_resid_pre": Direct(resid_pre),
        "attn.hook_q": _head_point(arch.q, "q"),
        "attn.hook_k": _head_point(arch.k, "kv"),
        "attn.hook_v": _head_point(arch.v, "kv"),
        "attn.hook_pattern": Pattern(arch.attn),
        "attn.hook_z": Direct(Site(arch.o.path, "in"), heads="q"),
        "hook_attn_out": attn_out,
        "hook_resid_mid": resid_mid,
        "mlp.hook_pre": (
            f"{family} routes tokens to experts whose weights are fused: no single MLP hidden layer"
            if moe or mlp_pre_proj is None
            else _proj_out(mlp_pre_proj)
        ),
        "mlp.hook_post": (
            f"{family} routes tokens to experts whose weights are fused: no single MLP hidden layer"
            if moe
            else Direct(Site(arch.mlp_out.path, "in"))
        ),
        "hook_mlp_out": _added(arch.mlp_contribution(), arch.mlp_scale),
        "hook_resid_post": Direct(Site(block, "out")),
    }
    if arch.router is not None:
        points["mlp.hook_router_logits"] = PerToken(Site(arch.router, "out"), like=Site(arch.mlp, "in"))
    points.update(overrides)
    global_points: dict[str, Point | str] = {"hook_embed": Direct(Site(arch.embed, "out"))}
    if arch.pos_embed is not None:
        global_points["hook_pos_embed"] = Direct(Site(arch.pos_embed, "out"))
    global_points["ln_final.hook_normalized"] = (
        Direct(Site(arch.final_norm, "out"))
        if arch.final_norm
        else f"{family} has no final norm (use the last block's hook_resid_post)"
    )
    return Adapter(
        family=family,
        layers=arch.layers,
        global_points=global_points,
        block_points=points,
        final_norm=arch.final_norm,
        arch=arch,
        n_kv_heads=n_kv_heads,
    )
