"""Resuming a run: `--resume FOLDER` parsed into a request (its config, checked against the
checkpoint's), and the checkpoint restored into the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lightnas.config import Config, parse_config
from lightnas.engine.loop import Engine
from lightnas.errors import CheckpointError, ConfigError
from lightnas.layout import TrainingFolder
from lightnas.models import state_mismatch
from lightnas.outputs.checkpoint import has_checkpoint, load_checkpoint

# keys that may change when resuming; everything else must match the checkpoint's config
RESUMABLE = (
    "epochs",
    "device",
    "progress",
    "export",
    "tracking",
    "data.num_workers",
    "data.data_dir",
    "distributed",
)


def config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        name = f"{prefix}{k}"
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict) and k != "search_space":
            out += config_differences(a[k], b[k], f"{name}.")
        elif a.get(k) != b.get(k):
            out.append(name)
    return out


@dataclass
class Request:
    """A parsed search command: a new run, or the resumption of `folder` (from `state`, or from
    the start when it has no checkpoint yet)."""

    cfg: Config
    ns: object
    parser: object
    folder: TrainingFolder | None = None
    state: dict | None = None
    argv: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # config keys that differ from the checkpoint's

    @property
    def from_file_only(self) -> bool:
        """Run from one config file with no overrides (else the config is autosaved)."""
        a = self.argv
        return len(a) == 2 and a[0] in ("-c", "--config")


def parse_request(argv: Sequence[str]) -> Request:
    """Parse a search command line and resolve `--resume` (config and checkpoint)."""
    argv = ["--print_config" if a == "--print-config" else a for a in argv]
    cfg, ns, parser = parse_config(argv)
    if not ns.resume:
        return Request(cfg, ns, parser, argv=tuple(argv))
    folder = TrainingFolder(Path(ns.resume)).checked("--resume")
    # the saved config first, then whatever the command line adds on top of it
    cfg, ns, parser = parse_config(["--config", str(folder.config), *argv])
    if not has_checkpoint(folder.checkpoints):  # stopped before its first checkpoint
        return Request(cfg, ns, parser, folder, None, tuple(argv))
    state = load_checkpoint(folder.checkpoints)
    changed = tuple(
        k
        for k in config_differences(state["config"], cfg.to_dict())
        if not any(k == r or k.startswith(r + ".") for r in RESUMABLE)
    )
    if changed and not ns.force:
        raise ConfigError(
            f"--resume {folder.root}: the config differs from the checkpoint's in "
            f"{', '.join(changed)}; only {', '.join(RESUMABLE)} may change "
            "(pass --force true to resume anyway)"
        )
    chosen = state.get("final") is not None or cfg.search.final_top_k == 0
    if cfg.epochs < state["epoch"] or (cfg.epochs == state["epoch"] and chosen):
        raise ConfigError(
            f"--resume {folder.root}: {state['epoch']} of epochs={cfg.epochs} already done; "
            "raise --epochs to train longer"
        )
    return Request(cfg, ns, parser, folder, state, tuple(argv), changed)


def restore(engine: Engine, request: Request) -> None:
    """Load the request's checkpoint into `engine`; a checkpoint that does not fit the config
    (a forced resume with another model, say) is refused before the folder is touched."""
    where = f"--resume {request.folder.root}"
    differing = ", ".join(request.changed) or "no key"
    saved, expected = request.state["supernet"], engine.supernet.state_dict()
    wrong = state_mismatch(expected, saved)
    if wrong:
        raise CheckpointError(
            f"{where}: the checkpoint's supernet does not fit this config ({wrong}; the config "
            f"differs in {differing}); nothing was changed"
        )
    try:
        engine.load_state_dict(request.state)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{where}: the checkpoint does not fit this config ({reason}; the config differs "
            f"in {differing}); nothing was changed"
        ) from None
