"""The dashboard's Spaces page: the space files in `<configs>/spaces/` (docs/spaces.md), each
drawn as its graph with its decision points and size, an editor that checks the text as it is
typed (`POST /api/space/check`: the error and its line, or the graph), and a search launched on
the edited space through the launch page's own path (`lightnas.dashboard.launch`).

Pages: `/spaces`, `/spaces/<file>`. JSON: `/api/space/<file>` (the summary with the cost range),
`POST /api/space/check`. Action: `POST /spaces/launch`.
"""

from __future__ import annotations

import datetime
import re
import tempfile
from pathlib import Path
from typing import Annotated

import graphviz
from fastapi import APIRouter, Body, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from lightnas.dashboard import checking
from lightnas.dashboard import launch as launching
from lightnas.dashboard.folders import cached
from lightnas.dashboard.formatting import FILTERS
from lightnas.dashboard.paths import private_dir
from lightnas.errors import ConfigError
from lightnas.models.graph import SpaceError, analyse_space, load_space
from lightnas.models.graph.render import space_to_dot
from lightnas.outputs.graphs import dot_available
from lightnas.scoring.space_summary import summarize_space
from lightnas.search.space import SearchSpace

HERE = Path(__file__).resolve().parent
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.ya?ml")
MAX_SPACE_BYTES = checking.MAX_CONFIG_BYTES
CLASSES = 10  # the head's classes when a space is drawn and measured outside a run

router = APIRouter()
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(FILTERS)


def spaces_dir(request: Request) -> Path | None:
    configs = request.app.state.settings.configs
    return None if configs is None else configs / "spaces"


def space_files(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and FILE_NAME.fullmatch(p.name))


def _file(request: Request, name: str) -> Path:
    """The space file `name` of the spaces folder (a plain file name only)."""
    files = {p.name: p for p in space_files(spaces_dir(request))}
    if name not in files:
        raise HTTPException(404, f"{name}: no such space file in the spaces folder")
    return files[name]


# ---- checking ----------------------------------------------------------------------------------
def check_text(text: str, source: str = "the space") -> dict:
    """The editor's answer: {"ok": False, "error", "line"} or {"ok": True, "name", "points",
    "size", "dot"} (shapes checked on the meta device: no weights, no arithmetic)."""
    if len(text.encode()) > MAX_SPACE_BYTES:
        return {"ok": False, "error": f"larger than {MAX_SPACE_BYTES // 1024} KiB", "line": None}
    try:
        space = load_space(text, source)
        done = analyse_space(space, CLASSES, "thumbnail")
    except SpaceError as err:
        return {"ok": False, "error": str(err.with_source(source)), "line": err.line}
    points = done.space
    size = SearchSpace(space.name, points).size
    return {
        "ok": True,
        "name": space.name,
        "description": space.description,
        "points": [{"name": p.name, "kind": p.kind, "choices": list(p.choices)} for p in points],
        "size": str(size),
        "size_short": f"{size:.3g}",
        "dot": space_to_dot(done, f"{space.name} (version {space.version})"),
    }


def svg_of(dot: str) -> str | None:
    """The graph as SVG text, or None without Graphviz's `dot`."""
    if not dot_available():
        return None
    return graphviz.pipe("dot", "svg", dot.encode()).decode()


def _listed(path: Path) -> dict:
    checked = check_text(path.read_text(encoding="utf-8", errors="replace"), path.name)
    checked.pop("dot", None)
    return {"file": path.name, **checked}


def _summary(path: Path) -> dict:
    """The file's summary with the cost range (builds the supernet: cached per file version)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        summary = summarize_space(load_space(text, path.name, path.stem), CLASSES)
    except SpaceError as err:
        return {"ok": False, "error": str(err.with_source(path.name)), "line": err.line}
    return {"ok": True, **summary.as_dict(), "svg": svg_of(summary.dot)}


# ---- pages and endpoints -------------------------------------------------------------------------
def _page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/spaces")
def spaces_page(request: Request) -> HTMLResponse:
    folder = spaces_dir(request)
    spaces = [cached("space-list", p, _listed) for p in space_files(folder)]
    return _page(request, "spaces.html", spaces=spaces, folder=str(folder or "configs/spaces"))


def _space_context(request: Request, name: str, error: str = "", form: dict | None = None) -> dict:
    path = _file(request, name)
    configs = launching.list_configs(request.app.state.settings.configs)
    form = form or {"config": "quickstart.yml" if "quickstart.yml" in configs else ""}
    text = form.get("text") or path.read_text(encoding="utf-8", errors="replace")
    return {"file": name, "text": text, "configs": configs, "error": error, "form": form}


@router.get("/spaces/{name}")
def space_page(request: Request, name: str) -> HTMLResponse:
    return _page(request, "space.html", **_space_context(request, name))


@router.get("/api/space/{name}")
def api_space(request: Request, name: str) -> JSONResponse:
    return JSONResponse(cached("space-summary", _file(request, name), _summary))


@router.post("/api/space/check")
def api_check(text: Annotated[str, Body(media_type="text/plain")] = "") -> JSONResponse:
    checked = check_text(text)
    if checked["ok"]:
        checked["svg"] = svg_of(checked.pop("dot"))
    return JSONResponse(checked)


@router.post("/spaces/launch")
def launch_space(
    request: Request,
    file: Annotated[str, Form()],
    text: Annotated[str, Form()] = "",
    config: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    epochs: Annotated[str, Form()] = "",
    overrides: Annotated[str, Form()] = "",
) -> Response:
    """A search on the (edited) space: its text kept under .dashboard/spaces, the chosen config
    with model.name graph and model.file that text, started as the launch page starts one."""
    settings = request.app.state.settings
    cwd = settings.cwd or Path.cwd()
    form = {"config": config, "name": name, "epochs": epochs, "overrides": overrides, "text": text}
    stored = None
    try:
        checked = check_text(text, file)
        if not checked["ok"]:
            raise ConfigError(checked["error"])
        if config not in launching.list_configs(settings.configs):
            raise ConfigError("pick the config whose data, search and training settings to use")
        stored = store_space(settings.root, text, file)
        lines = [f"epochs={epochs.strip()}"] if epochs.strip() else []
        lines += space_overrides(stored) + [overrides]
        argv = checking.parse_overrides("\n".join(lines), settings.allow_imports)
        path = settings.configs / config
        launch = launching.validate(settings.root, cwd, path, argv, name.strip())
    except ConfigError as err:
        if stored is not None:
            stored.unlink(missing_ok=True)
            stored.parent.rmdir()
        context = _space_context(request, file, str(err), form)
        return _page(request, "space.html", 400, **context)
    launching.start(settings.root, launch, cwd)
    return RedirectResponse(f"/run/{launch.path}", status_code=303)


def space_overrides(path: Path) -> list[str]:
    """The config overrides that make a search run on the space file `path`."""
    return [
        "model.name=graph",
        f"model.file={path}",
        "model.kwargs={}",  # the config's model's own kwargs do not apply to a graph
        "search_space=null",  # nor its search space: the decision points are in the file
    ]


def store_space(root: Path, text: str, filename: str) -> Path:
    """Keep an edited space under .dashboard/spaces/<new folder>/ (the search reads it when it
    starts), under its file's name: a space without `name:` is named after it."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(filename).stem)[:60] or "space"
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    folder = Path(tempfile.mkdtemp(prefix=f"{stamp}_", dir=private_dir(root, "spaces")))
    path = folder / f"{stem}.yml"
    path.write_text(text, encoding="utf-8")
    return path.resolve()
