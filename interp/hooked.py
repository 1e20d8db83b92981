"""HookedModel: a real Hugging Face model with TransformerLens-style hook points.

The model's own forward always runs; activations are read and edited through PyTorch hooks placed
from an adapter table (`interp.adapters`). With no hooks installed, outputs are bitwise those of the
wrapped model. Every hook is removed on every exit path, exceptions included.

    >>> model = interp.load("ioi-tiny")
    >>> logits, cache = model.run_with_cache("When Mary and John went to the store", names="blocks.*.hook_resid_post")
    >>> with model.hooks({"blocks.0.attn.hook_z": lambda z, name: z * 0}):
    ...     ablated = model("When Mary and John went to the store")
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from interp.adapters import detect
from interp.adapters.paths import submodule
from interp.adapters.selfcheck import self_check
from interp.adapters.spec import Architecture, Point
from interp.attention import PATTERN_HOOKS_ATTR
from interp.batched import run_batched
from interp.cache import ActivationCache, recorder
from interp.compat import TLCompat
from interp.devices import input_device, is_dispatched
from interp.errors import HookNameError, InterpError, closest
from interp.hook_points import Dims, Installation, is_toolkit_hook
from interp.interventions import Intervention
from interp.stopping import check_stop, run_until
from interp.validation import check_intervention_sets, check_texts, check_token_ids, max_positions
from interp.weights import WeightAccess

logger = logging.getLogger(__name__)

HookFn = Callable[[torch.Tensor, str], "torch.Tensor | None"]
Names = str | Sequence[str] | Callable[[str], bool] | None
Inputs = str | Sequence[str] | torch.Tensor
_MAX_MEMOISED_INSTALLATIONS = 64


class HookedModel(WeightAccess, TLCompat):
    """Wrap `hf_model` (a `PreTrainedModel`) and optionally its tokenizer.

    `cfg` holds the dimensions (`n_layers`, `d_model`, `n_heads`, `n_kv_heads`, `d_head`, `d_mlp`, ...),
    `arch` what a block computes and where its weights live (`interp.adapters.spec.Architecture`);
    weights read as `model.W_Q`, `model.weight("W_O", layer, head)` (see `interp.weights`).
    A model matched to a family by structure only is self-checked here (one tiny forward).
    """

    def __init__(self, hf_model: nn.Module, tokenizer: object | None = None):
        if not isinstance(hf_model, nn.Module) or not hasattr(hf_model, "config"):
            raise InterpError(
                f"HookedModel wraps a Hugging Face PreTrainedModel, got {type(hf_model).__name__}; "
                "use interp.load(name_or_path) to load one"
            )
        self.hf_model = hf_model
        self.tokenizer = tokenizer
        self.base_model: nn.Module = getattr(hf_model, "base_model", hf_model)
        self.adapter, self.cfg = detect(self.base_model, hf_model.config)
        self._dims = Dims(self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.d_head)
        self._points: dict[str, tuple[Point | str, int | None]] = {}
        for name, point in self.adapter.global_points.items():
            self._points[name] = (point, None)
        for layer in range(self.cfg.n_layers):
            for kind, point in self.adapter.block_points.items():
                self._points[f"blocks.{layer}.{kind}"] = (point, layer)
        self._names = tuple(n for n, (p, _) in self._points.items() if not isinstance(p, str))
        self._modules: dict[str, nn.Module] = {}
        self._installations: dict[tuple, Installation] = {}
        configs = {
            id(m.config): m.config
            for m in hf_model.modules()
            if hasattr(getattr(m, "config", None), "_attn_implementation")
        }
        self._attention_configs = list(configs.values())
        self.cache_device: torch.device | None = None
        """Where `run_with_cache` puts activations when not given `device` (None: where computed)."""
        if self.cfg.matched == "structure":
            for name, why in self_check(self).items():  # points that cannot be hooked exactly
                self._points[name] = (why, self._points[name][1])
            self._names = tuple(n for n in self._names if not isinstance(self._points[n][0], str))

    # -- basics ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        c = self.cfg
        return f"HookedModel({type(self.hf_model).__name__}, family={c.family}, n_layers={c.n_layers}, d_model={c.d_model})"

    @property
    def device(self) -> torch.device:
        """Where inputs go (the input embeddings' execution device on a model spread over devices)."""
        return input_device(self.hf_model)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf_model.parameters()).dtype

    def to(self, *args: object, **kwargs: object) -> HookedModel:
        if is_dispatched(self.hf_model):
            raise InterpError(
                "this model is spread over devices by a device_map; load it again with another device_map "
                "instead of moving it with .to()"
            )
        self.hf_model.to(*args, **kwargs)
        return self

    @property
    def arch(self) -> Architecture:
        """What a block computes and where its weights live (module paths, norms, residual layout)."""
        return self._arch_or_raise()

    def module(self, path: str, layer: int | None = None) -> nn.Module:
        """The submodule at `path`, relative to the base model (`model.base_model`); a path template
        from `model.arch` ("layers.{l}.self_attn") takes `layer`.

        >>> model.module(model.arch.attn, layer=0)     # block 0's attention module
        """
        if "{l}" in path:
            n = self.cfg.n_layers
            if not isinstance(layer, int) or not -n <= layer < n:
                raise InterpError(f"module {path!r}: layer {layer!r} out of range (the model has {n} layers)")
            path = path.format(l=layer % n)
        elif layer is not None:
            raise InterpError(f"module {path!r} is not per layer: pass no layer (or a path with {{l}})")
        module = self._modules.get(path)
        if module is None:
            module = self._modules[path] = submodule(self.base_model, path)
        return module

    _module = module  # placement code calls it on every hook install

    def hook_names(self) -> list[str]:
        """Every canonical hook name this model has, in forward order per block."""
        return list(self._names)

    def _point(self, name: str) -> tuple[Point, int | None]:
        if name not in self._points:
            hint = closest(name, self._names)
            raise HookNameError(
                f"unknown hook {name!r}"
                + (f"; closest: {', '.join(hint)}" if hint else "")
                + " (model.hook_names() lists all)"
            )
        point, layer = self._points[name]
        if isinstance(point, str):
            raise InterpError(f"{name}: {point}")
        return point, layer

    def select(self, names: Names) -> list[str]:
        """Resolve a glob, list of names/globs, or predicate to concrete hook names (all if None)."""
        if names is None:
            return list(self._names)
        if callable(names):
            return [n for n in self._names if names(n)]
        patterns = [names] if isinstance(names, str) else list(names)
        chosen: list[str] = []
        for pattern in patterns:
            if any(ch in pattern for ch in "*?["):
                matched = [n for n in self._names if fnmatch.fnmatchcase(n, pattern)]
                if not matched:
                    raise HookNameError(f"no hook matches {pattern!r} (model.hook_names() lists all)")
            else:
                self._point(pattern)
                matched = [pattern]
            chosen += [n for n in matched if n not in chosen]
        return chosen

    # -- tokens and forward --------------------------------------------------------------------
    def to_tokens(
        self, inputs: Inputs, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token ids [batch, pos] and attention mask (None when no padding) for text or token inputs."""
        if isinstance(inputs, torch.Tensor):
            ids = check_token_ids(inputs, self.cfg.d_vocab, max_positions(self.hf_model.config))
            return ids.to(self.device), None if attention_mask is None else attention_mask.to(self.device)
        if self.tokenizer is None:
            raise InterpError(
                "this model has no tokenizer: pass token ids, or HookedModel(hf_model, tokenizer)"
            )
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        check_texts(texts)
        needs_padding = len(texts) > 1
        if needs_padding and getattr(self.tokenizer, "pad_token", None) is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        enc = self.tokenizer(texts, return_tensors="pt", padding=needs_padding)
        mask = enc.get("attention_mask")
        if mask is not None and bool(mask.all()):
            mask = None
        ids = check_token_ids(enc["input_ids"], self.cfg.d_vocab, max_positions(self.hf_model.config))
        return ids.to(self.device), None if mask is None else mask.to(self.device)

    def _forward(
        self,
        ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        stop_at_layer: int | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        if getattr(self.hf_model.config, "use_cache", None) is not None:
            kwargs.setdefault("use_cache", False)
        if stop_at_layer is not None:
            n_blocks = check_stop(stop_at_layer, self.cfg.n_layers)
            call = lambda: self.hf_model(input_ids=ids, attention_mask=attention_mask, **kwargs)  # noqa: E731
            return run_until(self.module(self.adapter.layers), n_blocks, call)
        out = self.hf_model(input_ids=ids, attention_mask=attention_mask, **kwargs)
        logits = getattr(out, "logits", None)
        return logits if logits is not None else out.last_hidden_state

    def __call__(
        self,
        inputs: Inputs,
        attention_mask: torch.Tensor | None = None,
        stop_at_layer: int | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        """Logits [batch, pos, vocab] (or the last hidden state for models without an LM head).

        With `stop_at_layer=L` only blocks 0..L-1 run and the result is the residual stream after
        them [batch, pos, d_model] (`blocks.{L-1}.hook_resid_post`; negative L counts from the end).
        """
        ids, mask = self.to_tokens(inputs, attention_mask)
        return self._forward(ids, mask, stop_at_layer, **kwargs)

    def unembed(self, resid: torch.Tensor) -> torch.Tensor:
        """Final norm then unembedding: [..., d_model] -> [..., vocab] (the logit lens)."""
        head = (
            self.hf_model.get_output_embeddings() if hasattr(self.hf_model, "get_output_embeddings") else None
        )
        if head is None or self.adapter.final_norm is None:
            raise InterpError(f"{type(self.hf_model).__name__} has no final norm + LM head to unembed with")
        return self.scale_logits(head(self.module(self.adapter.final_norm)(resid)))

    # -- hooks ---------------------------------------------------------------------------------
    def _install(
        self, hooks: Iterable[tuple[str, Callable[[torch.Tensor], torch.Tensor | None]]], read_only: bool
    ) -> Installation:
        """Place `hooks` on the model. Placements are memoised by (names, read_only): a sweep that
        installs the same hook points thousands of times resolves them once."""
        hooks = list(hooks)
        key = (tuple(name for name, _ in hooks), read_only)
        installation = self._installations.get(key)
        if installation is None or installation.attached:  # attached: in use by an enclosing call
            installation = Installation(self._module, _resolve_path, self._dims, self._attention_configs)
            for name, callback in hooks:
                point, layer = self._point(name)
                installation.add(name, point, layer, callback, read_only)
            if len(self._installations) >= _MAX_MEMOISED_INSTALLATIONS:
                self._installations.clear()
            self._installations.setdefault(key, installation)
        installation.bind([callback for _, callback in hooks])
        installation.attach()
        return installation

    @contextlib.contextmanager
    def hooks(self, hooks: Mapping[str, HookFn] | Iterable[tuple[str, HookFn]]) -> Iterator[HookedModel]:
        """Install `fn(tensor, hook_name) -> tensor | None` on hook names (globs allowed) for the block.

        >>> with model.hooks({"blocks.*.hook_resid_post": lambda x, name: x * 1.1}):
        ...     logits = model(tokens)
        """
        pairs = hooks.items() if isinstance(hooks, Mapping) else hooks
        bound = [(name, _bind(fn, name)) for pattern, fn in pairs for name in self.select(pattern)]
        installation = self._install(bound, read_only=False)
        try:
            yield self
        finally:
            installation.remove()

    def run_with_cache(
        self,
        inputs: Inputs,
        names: Names = None,
        *,
        positions: slice | Sequence[int] | None = None,
        device: str | torch.device | None = None,
        attention_mask: torch.Tensor | None = None,
        grad: bool = False,
        stop_at_layer: int | None = None,
        **kwargs: object,
    ) -> tuple[torch.Tensor, ActivationCache]:
        """Run the model and record activations at `names` (glob, list, predicate; all by default).

        `positions` keeps only those positions (dim 1, or q_pos for patterns); `device` moves each
        activation there as it is recorded (e.g. "cpu" to keep GPU memory free; default `cache_device`);
        `grad=True` keeps activations in the autograd graph. With `stop_at_layer=L` only blocks 0..L-1
        run: the first result is the residual stream after them, and hooks of later blocks are absent
        from the cache.
        """
        store: dict[str, torch.Tensor] = {}
        device = self.cache_device if device is None else device
        chosen = self.select(names)
        hooks = [(name, recorder(store, name, positions, device, grad)) for name in chosen]
        ids, mask = self.to_tokens(inputs, attention_mask)
        installation = self._install(hooks, read_only=True)
        try:
            with torch.set_grad_enabled(grad or torch.is_grad_enabled()):
                logits = self._forward(ids, mask, stop_at_layer, **kwargs)
        finally:
            installation.remove()
        return logits, ActivationCache({n: store[n] for n in chosen if n in store}, self)

    def _intervention_hooks(self, interventions: Sequence[Intervention]) -> list[tuple[str, Callable]]:
        hooks = []
        for iv in interventions:
            if not isinstance(iv, Intervention):
                raise InterpError(
                    f"expected an Intervention (Patch, Ablate, Add, Scale, Project), got {type(iv).__name__}"
                )
            self._point(iv.hook)
            if iv.heads is not None:
                iv.point.check_heads(iv.heads, self.cfg)
            hooks.append((iv.hook, iv.apply))
        return hooks

    def run_with_interventions(
        self,
        inputs: Inputs,
        interventions: Sequence[Intervention],
        attention_mask: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        """Logits with `interventions` applied (in list order)."""
        hooks = self._intervention_hooks(interventions)
        ids, mask = self.to_tokens(inputs, attention_mask)
        installation = self._install(hooks, read_only=False)
        try:
            return self._forward(ids, mask, **kwargs)
        finally:
            installation.remove()

    def run_batched(
        self,
        inputs: Inputs,
        intervention_sets: Sequence[Sequence[Intervention]],
        *,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
        memory_budget: int | None = None,
        attention_mask: torch.Tensor | None = None,
        progress: bool = False,
        grad: bool = False,
    ) -> torch.Tensor:
        """Run many intervention sets in few forward passes: [n_sets, ...] of logits or of `reduce(logits)`.

        The batch is repeated once per set along the batch axis; each set's interventions touch only
        its own copy. Sets are chunked so one pass fits `memory_budget` bytes (default: a quarter of
        free GPU memory, or 2 GiB on CPU). Passes run without autograd unless `grad=True` (a pass's
        graph holds every activation: about 3x the budget).
        """
        check_intervention_sets(intervention_sets)
        for interventions in intervention_sets:
            self._intervention_hooks(interventions)
        ids, mask = self.to_tokens(inputs, attention_mask)
        return run_batched(self, ids, mask, intervention_sets, reduce, memory_budget, progress, grad)

    def hooks_installed(self) -> int:
        """How many of this toolkit's hooks are on the wrapped model (0 unless inside a `hooks()` block).

        Counts what is really attached to the modules (PyTorch hooks placed by an `Installation`, and
        pattern hooks), not bookkeeping; transformers' own output-recording hooks are not counted.
        """
        count = 0
        for module in self.hf_model.modules():
            for hook in (*module._forward_hooks.values(), *module._forward_pre_hooks.values()):
                count += is_toolkit_hook(hook)
            count += len(getattr(module, PATTERN_HOOKS_ATTR, ()))
        return count


def _resolve_path(template: str, layer: int | None) -> str:
    return template if layer is None else template.format(l=layer)


def _bind(fn: HookFn, name: str) -> Callable[[torch.Tensor], torch.Tensor | None]:
    return lambda tensor: fn(tensor, name)
