"""Every example in README.md and docs/ that shows output is run, and its output compared.

Two kinds of fenced block are executed; every other fence (``bash``, ``yaml``, ``text``, ...) is
only shown:

- ````console``: a shell session. A line starting with ``$ `` is a command (a trailing ``\\``
  continues it on the next line); the lines up to the next command are its expected output,
  stdout and stderr together as a terminal shows them. A command with no output shown must exit
  0. Commands run with bash in a fresh scratch folder per block that holds links to the
  checkout's ``docs/`` and ``benchmarks/`` folders, so paths like ``docs/examples/...`` work as
  from the repository's root, and a file the block writes by a name it chooses (``--plot
  occupancy.png``) lands in the scratch folder, never in the checkout.
- ````pycon``: a Python session (``>>>`` / ``...``), run by doctest; one namespace per file.

Output is compared as doctest does with ELLIPSIS and NORMALIZE_WHITESPACE: write ``...`` where a
figure varies (timings, versions), so the docs cannot go stale while the numbers may.

An HTML comment right before a block changes how it runs (invisible on the rendered page):
``<!-- doctest: skip -->`` (shown only: needs a cluster, a long-running server),
``<!-- doctest: slow -->`` (runs only with ``-m slow``).

No example may change the checkout: ``git status`` must read the same after each file's blocks,
so commands in the docs write only to paths the user names or to ignored folders.
"""
from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
MARKER = re.compile(r"<!--\s*doctest:\s*(?P<what>skip|slow)\s*-->")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
COMMAND_TIMEOUT = 300  # seconds; a command that takes longer is a broken example
# The one-line notice a process prints on stderr when it compiles a Numba kernel, the first
# time in an environment (numasched.kernels.config.notice_text). Pages show the output of every
# later run, so it is not compared: whether an example compiles depends on which tests, or the
# session's background warmup, filled the cache first.
COMPILE_NOTICE = re.compile(r"^numasched: compiling the Numba kernel .*\n", re.MULTILINE)
LINKED = ("docs", "benchmarks")  # what a console block sees of the checkout, by relative path


@dataclass
class Block:
    path: Path
    line: int          # 1-based line of the opening fence
    lang: str          # console or pycon
    text: str          # the block's body, dedented by the fence's indent
    marker: str | None # skip, slow or None

    @property
    def id(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


def doc_files() -> list[Path]:
    files = [ROOT / "README.md"]
    docs = ROOT / "docs"
    if docs.is_dir():
        files += sorted(p for p in docs.rglob("*.md") if "examples" not in p.parts)
    return [f for f in files if f.is_file()]


def blocks_of(path: Path) -> list[Block]:
    """The executable fenced blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i, pending_marker = [], 0, None
    while i < len(lines):
        m = MARKER.search(lines[i])
        if m:
            pending_marker = m["what"]
            i += 1
            continue
        open_ = FENCE.match(lines[i])
        if not open_:
            if lines[i].strip():
                pending_marker = None
            i += 1
            continue
        indent, fence = open_["indent"], open_["fence"]
        lang = open_["info"].strip().split(" ")[0].lower()
        body, j = [], i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence[:3])
                                      and lines[j].strip().strip(fence[0]) == ""):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        if lang in ("console", "pycon"):
            found.append(Block(path, i + 1, lang, "\n".join(body) + "\n", pending_marker))
        pending_marker = None
        i = j + 1
    return found


def all_blocks() -> list[Block]:
    return [b for f in doc_files() for b in blocks_of(f)]


def console_steps(text: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs of a console block."""
    steps: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command + "\n" + lines[i].lstrip()   # bash joins the lines
            steps.append((command, []))
        elif steps:
            steps[-1][1].append(line)
        i += 1
    return [(c, "\n".join(out).strip("\n") + "\n" if any(o.strip() for o in out) else "")
            for c, out in steps]


def doc_env() -> dict[str, str]:
    """A plain, wide, colourless terminal, and this interpreter's scripts first on PATH."""
    env = dict(os.environ)
    env.update({"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "PYTHONHASHSEED": "0",
                "PYTHONWARNINGS": "ignore"})
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def git_status() -> str | None:
    try:
        return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an sdist): nothing to compare


def scratch_folder(parent: str) -> Path:
    """A folder that looks like the checkout's root to relative paths (``docs/examples/...``)
    but keeps what a command writes there to itself."""
    folder = Path(parent)
    for name in LINKED:
        if (ROOT / name).exists():
            (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    return folder


def run_console(block: Block) -> None:
    with tempfile.TemporaryDirectory(prefix="numasched-docs-") as parent:
        run_console_in(block, scratch_folder(parent))


def run_console_in(block: Block, cwd: Path) -> None:
    checker = doctest.OutputChecker()
    for command, expected in console_steps(block.text):
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=doc_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=COMMAND_TIMEOUT)
        got = COMPILE_NOTICE.sub("", done.stdout)
        if not expected:
            assert done.returncode == 0, (
                f"{block.id}: `{command}` exited {done.returncode}:\n{got}")
            continue
        if not checker.check_output(expected, got, FLAGS):
            diff = checker.output_difference(doctest.Example(command, expected), got, FLAGS)
            pytest.fail(f"{block.id}: `{command}`\n{diff}", pytrace=False)


_NAMESPACES: dict[Path, dict] = {}


def run_pycon(block: Block) -> None:
    globs = _NAMESPACES.setdefault(block.path, {"__name__": "__docs__"})
    test = doctest.DocTestParser().get_doctest(block.text, globs, block.id, str(block.path),
                                               block.line)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        out: list[str] = []
        runner.run(test, out=out.append, clear_globs=False)
    finally:
        os.chdir(cwd)
        globs.update(test.globs)   # DocTest works on a copy: keep the names for the next block
    if runner.failures:
        pytest.fail("".join(out), pytrace=False)


BLOCKS = all_blocks()


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=b.id, marks=[pytest.mark.slow] if b.marker == "slow" else [])
     for b in BLOCKS if b.marker != "skip"],
)
def test_doc_example(block: Block):
    before = git_status()
    if block.lang == "console":
        run_console(block)
    else:
        run_pycon(block)
    assert git_status() == before, f"{block.id} changed the checkout (git status differs)"


def test_the_runner_reads_console_steps():
    steps = console_steps("$ echo a \\\n  b\na b\n$ true\n")
    assert steps == [("echo a \\\nb", "a b\n"), ("true", "")]
    done = subprocess.run(["bash", "-c", steps[0][0]], capture_output=True, text=True)
    assert done.stdout == "a b\n"


def test_pycon_blocks_of_one_file_share_a_namespace(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```pycon\n>>> x = 41\n```\n\n```pycon\n>>> x + 1\n42\n```\n",
                    encoding="utf-8")
    for block in blocks_of(page):
        run_pycon(block)
    assert _NAMESPACES.pop(page)["x"] == 41


def test_console_blocks_write_to_a_scratch_folder(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```console\n$ test -f docs/examples/trace.csv && echo found\nfound\n"
                    "$ echo x > written.txt && ls\nbenchmarks\ndocs\nwritten.txt\n```\n",
                    encoding="utf-8")
    (block,) = blocks_of(page)
    run_console(block)
    assert not (ROOT / "written.txt").exists()


def test_the_runner_honours_markers(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("<!-- doctest: skip -->\n```console\n$ false\n```\n\n```pycon\n>>> 1\n1\n```\n"
                    "\n```bash\nfalse\n```\n", encoding="utf-8")
    found = blocks_of(page)
    assert [(b.lang, b.marker) for b in found] == [("console", "skip"), ("pycon", None)]


# --------------------------------------------------------------------------------------------
# The documentation site builds without a warning (broken links, unknown API names, ...)
# --------------------------------------------------------------------------------------------
SITE_MODULES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python",
                "mkdocs_click")


def test_the_site_builds_strictly(tmp_path):
    import importlib.util

    missing = [m for m in SITE_MODULES if importlib.util.find_spec(m.split(".")[0]) is None
               or importlib.util.find_spec(m) is None]
    if missing:
        message = f"the docs extra is not installed (missing {', '.join(missing)}): pip install -e '.[docs]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    env = doc_env()
    env["NO_MKDOCS_2_WARNING"] = "1"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(tmp_path / "site")], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT)
    assert done.returncode == 0, done.stdout
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "python-api" / "index.html").is_file()


# --------------------------------------------------------------------------------------------
# Quoted benchmark figures are those of the saved runs they cite
# --------------------------------------------------------------------------------------------
def test_quoted_throughput_is_the_saved_run():
    """The README's table and the benchmarks page quote benchmarks/results/throughput.json
    (reprinted by `python benchmarks/throughput.py --from-json ... --markdown`): every figure
    they show for it must be that run's, and they must name its commit."""
    import json

    run = json.loads((ROOT / "benchmarks" / "results" / "throughput.json").read_text())
    rows = {r["policy"]: r for r in run["rows"]}
    best = rows["best-fit"]
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    for figure in (f"{best['backends']['cython']['per_s']:,.0f} placements/s",
                   f"{best['backends']['numba']['per_s']:,.0f} placements/s",
                   f"{best['numpy_scan']['per_s']:,.0f} placements/s",
                   f"{best['reference']['per_s']:,.1f} placements/s",
                   f"{best['backends']['cython']['x_numpy_scan']:,.0f}× faster",
                   f"{best['backends']['cython']['x_reference']:,.0f}× faster",
                   f"commit {run['commit']}"):
        assert figure in readme, figure
    page = (ROOT / "docs" / "explanation" / "benchmarks.md").read_text(encoding="utf-8")
    assert f"commit {run['commit']}" in page
    for policy, row in rows.items():
        for backend, b in row["backends"].items():
            line = f"| {policy} | {backend} | "
            if line in page:
                shown = page.split(line, 1)[1].split("|")[0].strip().strip("*")
                assert shown == f"{b['per_s']:,.0f}", (policy, backend, shown)
