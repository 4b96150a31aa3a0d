"""Deployment files: docker-compose.yml, Dockerfile, .dockerignore and the example configs.

No Docker engine is needed: everything is checked statically, and fast.

- docker-compose.yml is validated against the Compose Specification JSON schema, vendored as
  tests/fixtures/compose-spec.json. Source: the schema `schema/compose-spec.json` of the
  compose-spec/compose-spec repository (master), as shipped inside the PyPI package
  check-jsonschema 0.39.0 (released 2026-10) at
  check_jsonschema/builtin_schemas/vendor/compose-spec.json, sha256
  d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64 (JSON Schema draft 2020-12).
  It is Apache-2.0 licensed; the licence is tests/fixtures/LICENSE.compose-spec. To refresh it:
  `pip download --no-deps check-jsonschema` and copy that file out of the wheel.
- Every service command line is parsed by the parser of the installed tool it names: the
  click commands that `dask` registers for `dask scheduler` / `dask worker` (its "dask_cli"
  entry points) and hotpixels' own argparse parser, without starting anything.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import re
import shlex
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath

import pytest
import yaml
from dask.utils import parse_bytes

from pipeline import cli
from pipeline.config import load

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
SCHEDULER_ADDRESS = "tcp://scheduler:8786"
HYPHENATED = re.compile(r"\bdask-(scheduler|worker)\b")


# --------------------------------------------------------------------------- helpers
def _interpolate(value):
    """Compose's ${VAR:-default} / ${VAR-default} interpolation, with no variable set."""
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, str):
        out = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)
        assert "${" not in out.replace("$${", ""), f"unsupported interpolation (give a default): {value!r}"
        return out
    return value


@pytest.fixture(scope="module")
def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(raw_compose) -> dict:
    """The file as `docker compose config` would see it with no environment variables set."""
    return _interpolate(raw_compose)


def _argv(service: dict) -> list[str]:
    command = service.get("command")
    assert command, "every service gives its command explicitly"
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif value is not None:
        yield str(value)


def _dask_command(name: str):
    """The click command that `dask NAME` runs, found the way the `dask` CLI finds it."""
    found = [ep for ep in entry_points(group="dask_cli") if ep.name == name]
    assert found, f"`dask {name}` is not a command of the installed dask/distributed"
    return found[0].load()


def _parse_dask(argv: list[str]) -> dict:
    import click

    assert argv[0] == "dask" and len(argv) > 1, f"not a dask command line: {argv}"
    command = _dask_command(argv[1])
    try:
        ctx = command.make_context(f"dask {argv[1]}", list(argv[2:]))
    except click.ClickException as exc:
        pytest.fail(f"`{shlex.join(argv)}` is rejected by the installed dask: {exc.format_message()}")
    # click takes stray words as PRELOAD_ARGV instead of failing: none are meant here
    assert not ctx.params.get("preload_argv"), f"stray arguments in `{shlex.join(argv)}`: {ctx.params['preload_argv']}"
    return ctx.params


class _Parsed(Exception):
    def __init__(self, namespace):
        super().__init__("parsed")
        self.namespace = namespace


def _parse_hotpixels(argv: list[str], monkeypatch, capsys) -> argparse.Namespace:
    """hotpixels' own argparse parser on ``argv``; stops right after parsing, runs nothing."""
    assert argv[0] == "hotpixels", f"not a hotpixels command line: {argv}"
    parse = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        raise _Parsed(parse(self, args, namespace))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
        try:
            cli.main(list(argv[1:]))
        except _Parsed as parsed:
            return parsed.namespace
        except SystemExit:
            pytest.fail(f"`{shlex.join(argv)}` is rejected by hotpixels: {capsys.readouterr().err.strip()}")
    pytest.fail("hotpixels.cli.main did not parse its arguments with argparse")


def _jsonschema():
    try:
        import jsonschema
    except ImportError:
        pytest.fail("jsonschema is not installed: it belongs in the test extras of pyproject.toml")
    return jsonschema


def _docker_bytes(text: str) -> int:
    """Docker's memory sizes: 512m, 5g, 5gb (binary units)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", str(text).strip().lower())
    assert m, f"not a docker memory size: {text!r}"
    return int(float(m[1]) * 1024 ** "bkmgt".index(m[2] or "b"))


def _volumes(service: dict) -> dict[str, str]:
    """Container path -> source, for short and long volume syntax."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            out[parts[1] if len(parts) > 1 else parts[0]] = parts[0]
        else:
            out[v["target"]] = v.get("source", "")
    return out


def _under(path: str, mount: str) -> bool:
    return PurePosixPath(path) == PurePosixPath(mount) or PurePosixPath(mount) in PurePosixPath(path).parents


def _job_name(compose: dict) -> str:
    jobs = [name for name, s in compose["services"].items() if _argv(s)[:2] == ["hotpixels", "scan"]]
    assert len(jobs) == 1, f"exactly one service runs `hotpixels scan`, found {jobs}"
    return jobs[0]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# --------------------------------------------------------------------------- the compose file
def test_compose_file_follows_the_compose_specification(raw_compose, compose):
    jsonschema = _jsonschema()
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator
    validator.check_schema(schema)
    for doc in (raw_compose, compose):
        errors = sorted(validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_vendored_schema_is_strict(compose):
    """A typo or a wrong value must fail, or the test above proves nothing."""
    jsonschema = _jsonschema()
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    typo = json.loads(json.dumps(compose))
    typo["services"]["worker"]["comand"] = typo["services"]["worker"].pop("command")
    assert not validator.is_valid(typo)
    wrong = json.loads(json.dumps(compose))
    wrong["services"]["worker"]["depends_on"]["scheduler"]["condition"] = "service_up"
    assert not validator.is_valid(wrong)


def test_no_hyphenated_dask_commands(raw_compose):
    """distributed 2026.6 removed `dask-scheduler` / `dask-worker`: only `dask scheduler` / `dask worker`."""
    used = [s for s in _strings(raw_compose) if HYPHENATED.search(s)]
    assert not used, f"hyphenated dask commands in docker-compose.yml: {used}"
    instructions = [f"{i} {a}" for i, a in _dockerfile_instructions()]
    assert not [s for s in instructions if HYPHENATED.search(s)], "hyphenated dask commands in the Dockerfile"


def test_every_command_is_an_installed_tool():
    scripts = {ep.name for ep in entry_points(group="console_scripts")}
    assert {"dask", "hotpixels"} <= scripts


def test_scheduler_listens_on_every_interface_with_its_dashboard(compose):
    scheduler = compose["services"]["scheduler"]
    argv = _argv(scheduler)
    assert argv[:2] == ["dask", "scheduler"]
    params = _parse_dask(argv)
    assert params["host"] == "0.0.0.0", "inside a container the scheduler must bind 0.0.0.0"
    assert str(params["port"] or 8786) == "8786"
    assert params["dashboard"] and params["dashboard_address"].rsplit(":", 1)[-1] == "8787"
    assert params["dashboard_address"].rsplit(":", 1)[0] in ("", "0.0.0.0"), "the dashboard must bind every interface"
    published = {str(p).rsplit(":", 1)[-1] if not isinstance(p, dict) else str(p["target"]) for p in scheduler["ports"]}
    assert {"8786", "8787"} <= published


def test_scheduler_healthcheck_asks_its_health_endpoint(compose):
    import importlib

    import dask

    importlib.import_module("distributed")  # registers distributed's config defaults

    test = compose["services"]["scheduler"]["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:3] == ["python", "-c"], "the slim image has python, not curl"
    compile(test[3], "healthcheck", "exec")  # a syntax error would leave the scheduler unhealthy forever
    assert ":8787/health" in test[3]
    assert "distributed.http.health" in dask.config.get("distributed.scheduler.http.routes")


def test_workers_connect_to_the_scheduler_and_scale(compose):
    worker = compose["services"]["worker"]
    argv = _argv(worker)
    assert argv[:2] == ["dask", "worker"]
    params = _parse_dask(argv)
    assert params["scheduler"] == SCHEDULER_ADDRESS
    nworkers = params["n_workers"]
    assert nworkers is not None and (nworkers == "auto" or int(nworkers) >= 1), "give --nworkers"
    assert params["nthreads"] and params["nthreads"] >= 1, "give --nthreads"
    # scaling (--scale worker=N or deploy.replicas) needs no fixed name and no fixed host port
    assert "container_name" not in worker and not worker.get("ports")
    assert int(worker.get("deploy", {}).get("replicas", 1)) >= 1
    assert worker["depends_on"]["scheduler"]["condition"] == "service_healthy"
    # the preload that loads the kernels before the first task: a module the image can import
    from pipeline.engine.cluster import WORKER_PRELOAD

    assert WORKER_PRELOAD in params["preload"] and importlib.util.find_spec(WORKER_PRELOAD) is not None


def test_worker_memory_limit_fits_its_container(compose):
    from dask.utils import parse_bytes

    worker = compose["services"]["worker"]
    params = _parse_dask(_argv(worker))
    per_process = parse_bytes(params["memory_limit"])
    assert per_process > 0, "give --memory-limit"
    limit = worker.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory") or worker.get("mem_limit")
    assert limit, "give the worker container a memory limit"
    nworkers = 1 if params["n_workers"] in (None, "auto") else int(params["n_workers"])
    assert nworkers * per_process + 256 * 2**20 <= _docker_bytes(limit), (
        f"{nworkers} x {params['memory_limit']} per worker process and the nanny do not fit the container's {limit}")


def test_scan_job_runs_against_the_cluster(compose, monkeypatch, capsys):
    name = _job_name(compose)
    job = compose["services"][name]
    args = _parse_hotpixels(_argv(job), monkeypatch, capsys)
    assert args.command == "scan"
    assert args.scheduler == SCHEDULER_ADDRESS
    config = None
    if args.config is not None:  # a config baked into the image: the repository's copy
        image_configs = PurePosixPath("/opt/hotpixels/configs")
        assert image_configs in PurePosixPath(args.config).parents, f"{args.config} is not in the image"
        config = ROOT / "configs" / PurePosixPath(args.config).relative_to(image_configs)
    assert load(config, {"cluster.scheduler": args.scheduler}).cluster.scheduler == SCHEDULER_ADDRESS
    # it starts once the scheduler answers (hotpixels gives up connecting after a few seconds)
    depends = job["depends_on"]
    assert depends["scheduler"]["condition"] == "service_healthy"
    assert "worker" in depends
    assert job.get("restart", "no") == "no", "a finished scan must not start again"


def test_all_services_share_the_data_folder_at_the_same_path(compose, monkeypatch, capsys):
    args = _parse_hotpixels(_argv(compose["services"][_job_name(compose)]), monkeypatch, capsys)
    mounts = {svc: _volumes(s) for svc, s in compose["services"].items()}
    data = {svc: m.get("/data") for svc, m in mounts.items()}
    assert all(data.values()), f"every service mounts /data: {data}"
    assert len(set(data.values())) == 1, f"the same folder or volume everywhere: {data}"
    source = next(iter(data.values()))
    if not source.startswith((".", "/", "~")):
        assert source in compose.get("volumes", {}), f"named volume {source} is not declared"
    # the job finds the files and the workers open them: both under the shared mount
    assert _under(str(args.out), "/data") and all(_under(i, "/data") for i in args.inputs)


def test_services_run_the_image_built_here(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        assert context in (".", "./"), f"{name} builds the Dockerfile at the top level"


# --------------------------------------------------------------------------- Dockerfile
def test_dockerfile_installs_the_package_without_test_extras():
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    copied = [a.split()[:-1] for i, a in instructions if i == "COPY"]
    sources = {src.rstrip("/") for srcs in copied for src in srcs}
    assert {"pyproject.toml", "pipeline", "configs"} <= sources
    readme = re.search(r'^readme\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    if readme:
        assert readme[1] in sources, "pyproject.toml names a readme: the build needs it"
    runs = [a for i, a in instructions if i == "RUN"]
    installs = [r for r in runs if re.search(r"pip install(\s+--?[\w-]+)*\s+(['\"]?)\.(\[[\w,-]+\])?\2(\s|$)", r)]
    assert installs, "the Dockerfile must `pip install .`"

    def extras(run: str) -> set[str]:
        return {e.strip() for group in re.findall(r"\.\[([\w,\s-]+)\]", run) for e in group.split(",")}

    assert not [r for r in runs if "[test]" in r or "test" in extras(r)], "no test extra in the image"
    # with its dependencies (not --no-deps): pidng, for `hotpixels synth --format dng`
    assert [r for r in installs if "synth" in extras(r) and "--no-deps" not in r], "the image installs .[synth]"
    assert [r for r in runs if "hotpixels --help" in r], "the build checks that `hotpixels` is on PATH"


def test_dockerfile_runs_as_a_non_root_user():
    users = [a for i, a in _dockerfile_instructions() if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_configs_are_where_the_compose_comments_say():
    instructions = _dockerfile_instructions()
    workdir = None
    for instruction, args in instructions:
        if instruction == "WORKDIR":
            workdir = PurePosixPath(workdir or "/") / args
        if instruction == "COPY" and args.split()[0].rstrip("/") == "configs":
            dest = PurePosixPath(workdir or "/") / args.split()[-1]
            assert dest == PurePosixPath("/opt/hotpixels/configs")
            return
    pytest.fail("configs/ is not copied into the image")


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore matching, enough for plain names, globs, **/ and ! exceptions."""
    ignored = False
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        alternatives = [pattern]
        if pattern.startswith("**/"):
            alternatives.append(pattern[3:])
        hit = any(fnmatch.fnmatchcase(p, a) or fnmatch.fnmatchcase(p, a.replace("**/", "*/"))
                  for p in prefixes for a in alternatives)
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_venv_and_data_out_and_the_sources_in():
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.strip().startswith("#")]
    for path in (".venv", ".venv/bin/python", ".git", "data/photos/a.jpg", "pipeline/__pycache__/x.pyc"):
        assert _ignored(path, patterns), f".dockerignore must exclude {path}"
    for path in ("pyproject.toml", "README.md", "pipeline/__init__.py", "configs/default.yaml"):
        assert not _ignored(path, patterns), f".dockerignore must keep {path} (the Dockerfile copies it)"


# --------------------------------------------------------------------------- example configs
def test_cluster_config_points_at_the_compose_scheduler():
    assert load(ROOT / "configs" / "cluster.yaml").cluster.scheduler == SCHEDULER_ADDRESS


@pytest.mark.parametrize("config,shape,dtype", [("default.yaml", (4000, 6000, 3), "uint8"),
                                                 ("cluster.yaml", (4000, 6000, 3), "uint8"),
                                                 ("raw.yaml", (4000, 6000), "uint16")])
def test_shipped_configs_fit_the_compose_workers_for_24_mp(compose, config, shape, dtype):
    """A 24 MP camera's segment, by the memory model, fits a compose worker process's limit."""
    from pipeline.engine.plan import worker_thread_bytes

    worker = compose["services"]["worker"]
    argv = worker["command"]
    limit = parse_bytes(argv[argv.index("--memory-limit") + 1])
    need = worker_thread_bytes(shape, dtype, load(ROOT / "configs" / config).scan)
    assert need + 300 * 2**20 <= limit, f"{config}: {need / 2**30:.1f} GiB per worker thread, limit {limit / 2**30:.1f}"
