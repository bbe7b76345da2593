"""Supernet machinery: decision-point modules, the supernet base class, child extraction and the
model registry (`@register_model`, filled where each family is defined)."""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from lightnas.errors import ConfigError
from lightnas.models.init import DEFAULT_GRAD_CANCEL, DEFAULT_INIT, apply_common_options
from lightnas.registry import Registry
from lightnas.search.space import Architecture, DecisionPoint, SearchSpace

MODELS: Registry[Callable[..., Supernet]] = Registry("model", "model.name")
# model.kwargs every family takes, applied to the built supernet (lightnas.models.init)
COMMON_KWARGS = ("grad_cancel", "init")


def register_model(name: str) -> Callable:
    """Decorator registering a supernet factory `(num_classes, stem, search_space, **kw)`."""
    return MODELS.register(name)


def create_supernet(
    name: str,
    num_classes: int = 1000,
    stem: str = "imagenet",
    search_space: Mapping | None = None,
    grad_cancel: float = DEFAULT_GRAD_CANCEL,
    init: str = DEFAULT_INIT,
    **kwargs,
) -> Supernet:
    """Build the named supernet; `kwargs` override the family's spec (widths, blocks, ...).

    `grad_cancel` (binary activations pass gradients where |x| <= it) and `init` (a name in
    `lightnas.models.init.INITS`) apply to every family."""
    factory = MODELS[name]
    _check_kwargs(name, factory, kwargs)
    _check_spec_values(name, factory, kwargs)
    try:
        net = factory(num_classes=num_classes, stem=stem, search_space=search_space, **kwargs)
    except TypeError as err:
        if not kwargs:
            raise
        # a value of the wrong type (a string for a width, say) fails deep inside a layer
        raise ConfigError(f"model.kwargs={dict(kwargs)} do not fit {name}: {err}") from None
    apply_common_options(net, grad_cancel, init)
    return net


_RESERVED = ("self", "name", "num_classes", "stem", "search_space")


def _named(fn: Callable, fixed: Sequence[str] = ()) -> tuple[list[str], bool]:
    """(the keyword names `fn` takes besides the reserved and `fixed` ones, whether it takes
    **kwargs)."""
    params = inspect.signature(fn).parameters.values()
    names = [p.name for p in params if p.kind is not p.VAR_KEYWORD]
    names = [n for n in names if n not in _RESERVED and n not in fixed]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def passes_kwargs_to(factory: Callable, cls: type, *fixed: str) -> Callable:
    """Declare that `factory(**kwargs)` hands its other keyword arguments to `cls` (which the
    factory sets `fixed` of), so that a misspelt `model.kwargs` key is a ConfigError."""
    factory.kwargs_target = (cls, fixed)
    return factory


def _check_kwargs(name: str, factory: Callable, kwargs: Mapping) -> None:
    """Refuse keyword arguments that the model does not take, naming the ones it does."""
    accepted, open_ended = _named(factory)
    target = getattr(factory, "kwargs_target", None)
    if open_ended and target is not None:
        more, open_ended = _named(target[0], target[1])
        accepted += [n for n in more if n not in accepted]
    if open_ended:
        return
    accepted += COMMON_KWARGS
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model.kwargs: {name} takes no {', '.join(unknown)}; valid: {', '.join(accepted)}"
        )


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _list_of(value: object, ok: Callable[[object], bool], least: int = 0) -> bool:
    return isinstance(value, (list, tuple)) and len(value) >= least and all(map(ok, value))


# what a family's spec value may be, by its annotation: widths and groups are integers >= 1,
# block counts integers >= 0 (one stage at least), factors positive (else torch fails deep
# inside a layer, or a negative factor silently becomes the smallest width)
SPEC_RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "int": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "float": (lambda v: _number(v) and v > 0, "a number > 0"),
    "Sequence[int]": (
        lambda v: _list_of(v, lambda x: _integer(x) and x >= 0, least=1),
        "a non-empty list of integers >= 0",
    ),
    "Sequence[float]": (
        lambda v: _list_of(v, lambda x: _number(x) and x > 0),
        "a list of numbers > 0",
    ),
}


def _annotations(factory: Callable) -> dict[str, str]:
    """Keyword name -> its annotation (as written) in the factory or the class it feeds."""
    target = getattr(factory, "kwargs_target", None)
    out: dict[str, str] = {}
    for fn in ([target[0]] if target else []) + [factory]:  # the factory's own come last
        for param in inspect.signature(fn).parameters.values():
            if isinstance(param.annotation, str):
                out[param.name] = param.annotation
    return out


def _check_spec_values(name: str, factory: Callable, kwargs: Mapping) -> None:
    """Refuse a width, count or factor that no network has (`growth_rate: -8`), by the
    annotation of the keyword that takes it (SPEC_RULES)."""
    annotations = _annotations(factory)
    for key, value in kwargs.items():
        annotation = annotations.get(key, "")
        optional = annotation.endswith(" | None")
        rule = SPEC_RULES.get(annotation.removesuffix(" | None"))
        if rule is None or (optional and value is None):
            continue
        ok, valid = rule
        if not ok(value):
            raise ConfigError(
                f"model.kwargs.{key}={value!r} is not valid for {name}; valid: {valid}"
            )


class Choice(nn.Module):
    """A decision point inside a supernet: runs only its active choice."""

    def __init__(self, point: DecisionPoint) -> None:
        super().__init__()
        self.point = point
        self.active = point.choices[0]

    def set_choice(self, choice: str) -> None:
        if choice not in self.point.choices:
            raise ValueError(
                f"unknown choice {choice!r} at {self.point.name!r}; "
                f"valid: {', '.join(self.point.choices)}"
            )
        self.active = choice

    def extract(self) -> nn.Module | None:
        """A standalone copy of the active choice holding only its weights; None removes it."""
        raise NotImplementedError


class Network(nn.Module):
    """stem -> body -> head: the layout of every supernet and of every extracted child."""

    def __init__(self, stem: nn.Module, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.body = body
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))


class Supernet(Network):
    """A network whose `Choice` modules together form its search space."""

    def __init__(self, name: str, stem: nn.Module, body: nn.Module, head: nn.Module) -> None:
        super().__init__(stem, body, head)
        self.model_name = name

    @property
    def space(self) -> SearchSpace:
        return SearchSpace(self.model_name, [c.point for c in self.choice_modules().values()])

    def choice_modules(self) -> dict[str, Choice]:
        return {m.point.name: m for m in self.modules() if isinstance(m, Choice)}

    def set_architecture(self, arch: Architecture | Mapping[str, str]) -> None:
        if not isinstance(arch, Architecture):
            arch = Architecture(self.space, arch)
        modules = self.choice_modules()
        if list(arch) != list(modules):
            raise ValueError(
                f"architecture is for space {arch.space.name!r}, which does not match this "
                f"supernet's decision points ({self.model_name})"
            )
        for name, choice in arch.items():
            modules[name].set_choice(choice)

    def architecture(self) -> Architecture:
        """The architecture the supernet is currently set to."""
        return Architecture(self.space, {n: m.active for n, m in self.choice_modules().items()})


def _materialize(module: nn.Module) -> nn.Module:
    """Replace every Choice below `module` by its extracted op, dropping removed ones."""
    for name, sub in list(module.named_children()):
        if isinstance(sub, Choice):
            replacement = sub.extract()
            if replacement is not None:
                replacement = _materialize(replacement)
        else:
            replacement = _materialize(sub)
        setattr(module, name, replacement if replacement is not None else nn.Identity())
    if isinstance(module, nn.Sequential):
        kept = [m for m in module if not isinstance(m, nn.Identity)]
        if len(kept) != len(module):
            return nn.Sequential(*kept)
    return module


def child(supernet: Supernet, arch: Architecture | Mapping[str, str]) -> Network:
    """A standalone network: only the chosen ops of `arch`, with the supernet's trained weights."""
    supernet.set_architecture(arch)
    parts = [
        _materialize(_deepcopy_structure(m)) for m in (supernet.stem, supernet.body, supernet.head)
    ]
    net = Network(*parts)
    net.train(supernet.training)
    for module in net.modules():
        # a compiled module's copy would still call the original's forward (compile: regional)
        module._compiled_call_impl = None
    return net


def _deepcopy_structure(module: nn.Module) -> nn.Module:
    """Copy containers and non-choice leaves; Choice modules are kept (they copy in `extract`)."""
    if isinstance(module, Choice):
        return module
    clone = copy.copy(module)
    clone._parameters = {k: _clone_param(v) for k, v in module._parameters.items()}
    clone._buffers = {k: None if v is None else v.clone() for k, v in module._buffers.items()}
    clone._modules = {k: _deepcopy_structure(v) for k, v in module._modules.items()}
    return clone


def _clone_param(p: nn.Parameter | None) -> nn.Parameter | None:
    return None if p is None else nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)


def space_without_weights(build: Callable[[], Supernet]) -> SearchSpace:
    """The search space of the supernet `build()` makes, built on the meta device: the space
    needs only the supernet's structure, so no weight is allocated."""
    with torch.device("meta"):
        return build().space


def state_mismatch(expected: Mapping[str, Tensor], state: Mapping[str, Tensor]) -> str | None:
    """How the state dict `state` fails to fit a network whose own is `expected`, in a few words
    ("missing: a.weight (+2 more); shape: b.weight"), or None when it fits (load_state_dict's
    own error is many lines)."""
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    problems = [
        f"{label}: {keys[0]}" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
        if keys
    ]
    return "; ".join(problems) or None


def check_ops(key: str, ops: Sequence, valid: Sequence, what: str = "op") -> tuple:
    """Validate a config's list of choices (ops, bit widths) for a decision-point kind."""
    if isinstance(ops, str) or not isinstance(ops, Sequence):
        raise ConfigError(f"search_space.{key} must be a list; valid items: {_names(valid)}")
    ops = tuple(ops)
    names = _names(valid)
    if not ops:
        raise ConfigError(f"search_space.{key} is empty; valid: {names}")
    for op in ops:
        if op not in valid:
            raise ConfigError(f"search_space.{key}: unknown {what} {op!r}; valid: {names}")
    if len(set(ops)) != len(ops):
        raise ConfigError(f"search_space.{key} lists a {what} twice: {list(ops)}")
    return ops


def _names(valid: Sequence) -> str:
    return ", ".join(str(v) for v in valid)


def check_space_keys(model: str, space: Mapping, valid: Sequence[str]) -> None:
    for key in space:
        if key not in valid:
            raise ConfigError(
                f"search_space.{key} is not valid for {model}; valid keys: {', '.join(valid)}"
            )
