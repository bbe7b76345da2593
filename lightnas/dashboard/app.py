"""The dashboard's web application (FastAPI): pages rendered with Jinja2, charts drawn in the
browser by Plotly from the JSON endpoints, every script and style served from installed packages.

Pages: `/` runs, `/run/<path>` a run, `/sweep/<path>` a sweep, `/compare?run=a&run=b`, `/launch`.
JSON: `/api/runs`, `/api/run/<path>`, `/api/sweep/<path>`, `/api/compare`,
`/api/architecture/<path>?epoch=N` (without `epoch`: the run's result).
Files: `/download/<path>` (inside the root only). Actions (POST): `/launch`, `/stop/<path>`,
`/resume/<path>`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import plotly
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from lightnas.dashboard import checking, listing
from lightnas.dashboard import launch as launching
from lightnas.dashboard.architecture import (
    architecture_svg,
    architecture_text,
    result_svg,
    result_text,
)
from lightnas.dashboard.compare import compare_data
from lightnas.dashboard.formatting import FILTERS
from lightnas.dashboard.paths import OutsideRoot, resolve_inside
from lightnas.dashboard.rundata import run_data
from lightnas.dashboard.security import BodyTooLarge, Guard, is_loopback, limited_form
from lightnas.dashboard.spaces import router as spaces_router
from lightnas.dashboard.sweeps import sweep_data
from lightnas.errors import ConfigError
from lightnas.layout import SweepFolder, TrainingFolder

HERE = Path(__file__).resolve().parent
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
POLL_MS = 2000


@dataclass(frozen=True)
class Settings:
    """Where the dashboard reads and launches: the root of its training folders, the configs
    offered on the launch page, the working directory of launched searches; its token, host and
    whether a launch may import modules."""

    root: Path
    configs: Path | None = None
    cwd: Path | None = None
    token: str | None = None
    host: str = "127.0.0.1"
    allow_imports: bool = False  # a launch's config may import modules (extensions)


def create_app(settings: Settings) -> FastAPI:
    """The dashboard over `settings.root` (which must exist)."""
    app = FastAPI(title="LightNAS dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.add_middleware(Guard, token=settings.token, loopback=is_loopback(settings.host))
    app.add_api_route("/static/plotly.min.js", plotly_js, methods=["GET"])
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for path, endpoint, methods in ROUTES:
        app.add_api_route(path, endpoint, methods=methods)
    app.include_router(spaces_router)  # /spaces, /api/space/... (lightnas.dashboard.spaces)
    return app


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(FILTERS)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _inside(request: Request, path: str) -> Path:
    try:
        return resolve_inside(_settings(request).root, path)
    except OutsideRoot as err:
        raise HTTPException(404, str(err)) from None


def _training(request: Request, path: str) -> tuple[TrainingFolder, listing.RunSummary]:
    full = _inside(request, path)
    summary = listing.find_run(_settings(request).root, full)
    if summary is None:
        raise HTTPException(404, f"{path}: not a training folder")
    return TrainingFolder(full), summary


# ---- static files ------------------------------------------------------------------------------
def plotly_js() -> FileResponse:
    """Plotly's bundled plotly.min.js from the installed `plotly` package (no CDN)."""
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=headers)


# ---- the runs page -----------------------------------------------------------------------------
@dataclass
class RunsQuery:
    """The runs page's filter and order (query parameters)."""

    q: str = ""
    state: str = ""
    kind: str = ""
    sort: str = "started"
    order: str = "desc"


def _listed(request: Request, query: RunsQuery) -> list[listing.RunSummary]:
    runs = listing.list_runs(_settings(request).root)
    runs = listing.filter_runs(runs, query.q, query.state, query.kind)
    return listing.sort_runs(runs, query.sort, query.order != "asc")


def runs_page(request: Request, query: Annotated[RunsQuery, Depends()]) -> HTMLResponse:
    context = {"states": listing.STATES, "kinds": listing.KINDS, "query": asdict(query)}
    root = str(_settings(request).root)
    return _page(request, "runs.html", runs=_listed(request, query), root=root, **context)


def runs_table(request: Request, query: Annotated[RunsQuery, Depends()]) -> HTMLResponse:
    return _page(request, "_runs_table.html", runs=_listed(request, query), query=asdict(query))


def api_runs(request: Request, query: Annotated[RunsQuery, Depends()]) -> JSONResponse:
    return JSONResponse([r.as_dict() for r in _listed(request, query)])


# ---- a run ---------------------------------------------------------------------------------
def run_page(request: Request, path: str, error: str = "") -> Response:
    full = _inside(request, path)
    if SweepFolder(full).is_sweep():
        return RedirectResponse(f"/sweep/{path}", status_code=303)
    record = launching.launch_record(_settings(request).root, path)
    if not TrainingFolder(full).is_training() and record is None:
        raise HTTPException(404, f"{path}: not a training folder")
    status = 409 if error else 200
    return _page(request, "run.html", status, path=path, error=error, poll_ms=POLL_MS)


def api_run(request: Request, path: str) -> JSONResponse:
    full = _inside(request, path)
    root = _settings(request).root
    record = launching.launch_record(root, path)
    if not TrainingFolder(full).is_training():
        if record is None:
            raise HTTPException(404, f"{path}: not a training folder")
        state = "starting" if record["alive"] else "failed"
        return JSONResponse(
            {"summary": {"path": path, "name": full.name, "state": state}, "launch": record}
        )
    folder, summary = _training(request, path)
    if launching.starting(record, summary.pid):
        summary.state = "starting"
    return JSONResponse({**run_data(root, folder, summary), "launch": record})


def api_architecture(
    request: Request, path: str, epoch: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    """Epoch `epoch`'s architecture; without `epoch`, the run's result's
    (lightnas.outputs.result)."""
    folder, _ = _training(request, path)
    root = _settings(request).root
    svg = architecture_svg(root, folder, epoch) if epoch else result_svg(root, folder)
    if svg is not None:
        return Response(svg, media_type="image/svg+xml")
    text = architecture_text(root, folder, epoch) if epoch else result_text(root, folder)
    if text is None:
        what = f"epoch {epoch}" if epoch else "the result (no epoch has ended)"
        raise HTTPException(404, f"{path}: no architecture saved for {what}")
    return PlainTextResponse(text)


def download(request: Request, path: str) -> FileResponse:
    full = _inside(request, path)
    if not full.is_file():
        raise HTTPException(404, f"{path}: no such file")
    return FileResponse(full, filename=full.name, media_type="application/octet-stream")


# ---- compare and sweeps --------------------------------------------------------------------
def _compared(request: Request, run: list[str]) -> list[tuple[listing.RunSummary, TrainingFolder]]:
    picked = list(dict.fromkeys(run))
    folders = [_training(request, p) for p in picked]
    return [(summary, folder) for folder, summary in folders]


def compare_page(
    request: Request, run: Annotated[list[str] | None, Query()] = None
) -> HTMLResponse:
    runs = listing.list_runs(_settings(request).root)
    trainings = [r for r in runs if r.kind != "sweep"]
    picked = list(dict.fromkeys(run or []))
    return _page(request, "compare.html", picked=picked, runs=trainings)


def api_compare(request: Request, run: Annotated[list[str] | None, Query()] = None) -> JSONResponse:
    compared = _compared(request, list(run or []))
    if len(compared) < 2:
        raise HTTPException(400, "compare needs two or more runs: ?run=a&run=b")
    return JSONResponse(compare_data(compared))


def _sweep(request: Request, path: str) -> tuple[SweepFolder, listing.RunSummary, list]:
    full = _inside(request, path)
    if not SweepFolder(full).is_sweep():
        raise HTTPException(404, f"{path}: not a sweep folder")
    root = _settings(request).root
    found = [f for f in listing.discover(full) if f.kind == "trial"]
    trials = [listing.summarize_training(root, f) for f in found]
    summary = listing.summarize_sweep(root, listing.Found(full, "sweep"), trials)
    return SweepFolder(full), summary, trials


def sweep_page(request: Request, path: str) -> HTMLResponse:
    sweep, summary, trials = _sweep(request, path)
    return _page(request, "sweep.html", path=path, summary=summary, poll_ms=POLL_MS * 5)


def api_sweep(request: Request, path: str) -> JSONResponse:
    sweep, summary, trials = _sweep(request, path)
    return JSONResponse(sweep_data(_settings(request).root, sweep, summary, trials))


# ---- launch, stop, resume ------------------------------------------------------------------
def _launch_context(request: Request) -> dict:
    s = _settings(request)
    return {
        "configs": launching.list_configs(s.configs),
        "allow_imports": s.allow_imports,
        "max_config_kib": checking.MAX_CONFIG_BYTES // 1024,
    }


def launch_page(request: Request) -> HTMLResponse:
    return _page(request, "launch.html", error="", form={}, **_launch_context(request))


def _cwd(s: Settings) -> Path:
    return s.cwd or Path.cwd()


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("the uploaded config is not UTF-8 text") from None


def _prepare(s: Settings, form: dict[str, str], raw: bytes, filename: str) -> launching.Launch:
    """Check the launch form (what it may set), then validate it as the CLI would in a process
    of its own; an uploaded config is kept only if valid. Runs on a worker thread."""
    text = _decode(raw)
    epochs = form["epochs"].strip()
    overrides_text = (f"epochs={epochs}\n" if epochs else "") + form["overrides"]
    overrides = checking.parse_overrides(overrides_text, s.allow_imports)
    output_dir = None  # a config from --configs is the operator's: it writes into the root
    if text.strip():
        output_dir = checking.check_yaml(text, s.allow_imports).get("output_dir")
        path = launching.store_upload(s.root, text, filename)
    elif form["config"] in launching.list_configs(s.configs):
        path = s.configs / form["config"]
    else:
        raise ConfigError("pick a config from the list or upload a YAML file")
    try:
        return launching.validate(
            s.root, _cwd(s), path, overrides, form["name"].strip(), output_dir
        )
    except Exception:  # refused, or a bug: the upload is kept only for a launch
        if text.strip():
            path.unlink(missing_ok=True)
        raise


def _field(form: FormData, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


async def _read_launch_form(request: Request) -> tuple[dict[str, str], bytes, str]:
    """The form's fields, the uploaded config's bytes and its file name; the body is refused
    past MAX_FORM_BYTES (by its Content-Length first), the upload read up to its limit."""
    data = await limited_form(request, checking.MAX_FORM_BYTES)
    try:
        form = {key: _field(data, key) for key in ("config", "name", "epochs", "overrides")}
        upload = data.get("upload")
        if not isinstance(upload, UploadFile):
            return form, b"", ""
        return form, await upload.read(checking.MAX_CONFIG_BYTES + 1), upload.filename or ""
    finally:
        await data.close()


async def launch_post(request: Request) -> Response:
    s = _settings(request)
    form = {}
    try:
        form, raw, filename = await _read_launch_form(request)
        launch = await run_in_threadpool(_prepare, s, form, raw, filename)
    except ConfigError as err:
        status = 413 if isinstance(err, BodyTooLarge) else 400
        context = _launch_context(request)
        return _page(request, "launch.html", status, error=str(err), form=form, **context)
    launching.start(s.root, launch, _cwd(s))
    return RedirectResponse(f"/run/{launch.path}", status_code=303)


def stop_post(request: Request, path: str) -> Response:
    folder, _ = _training(request, path)
    try:
        launching.stop(folder)
    except ConfigError as err:
        return run_page(request, path, str(err))
    return RedirectResponse(f"/run/{path}", status_code=303)


def resume_post(request: Request, path: str, epochs: Annotated[str, Form()] = "") -> Response:
    folder, _ = _training(request, path)
    s = _settings(request)
    if epochs.strip() and not epochs.strip().isdigit():
        return run_page(request, path, f"epochs={epochs!r} is not a whole number")
    try:
        more = int(epochs) if epochs.strip() else None
        launching.resume(s.root, folder, path, more, _cwd(s))
    except ConfigError as err:
        return run_page(request, path, str(err))
    return RedirectResponse(f"/run/{path}", status_code=303)


ROUTES = (
    ("/", runs_page, ["GET"]),
    ("/runs-table", runs_table, ["GET"]),
    ("/api/runs", api_runs, ["GET"]),
    ("/run/{path:path}", run_page, ["GET"]),
    ("/api/run/{path:path}", api_run, ["GET"]),
    ("/api/architecture/{path:path}", api_architecture, ["GET"]),
    ("/download/{path:path}", download, ["GET"]),
    ("/compare", compare_page, ["GET"]),
    ("/api/compare", api_compare, ["GET"]),
    ("/sweep/{path:path}", sweep_page, ["GET"]),
    ("/api/sweep/{path:path}", api_sweep, ["GET"]),
    ("/launch", launch_page, ["GET"]),
    ("/launch", launch_post, ["POST"]),
    ("/stop/{path:path}", stop_post, ["POST"]),
    ("/resume/{path:path}", resume_post, ["POST"]),
)
