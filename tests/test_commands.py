"""Every command the project tells a user to run names things that exist.

The commands come from README.md's ```bash blocks, the inline `code` of README.md and
DEVELOPERS.md that starts like a command, every model's command.txt and card, the campaign's
README, the usage lines of every module docstring and script header, and the install hint
of the export script. For each: pip extras and requirement files exist, `python -m` modules
and scripts exist, every --flag is in that entry point's --help, scripts are executable,
curl's API paths are routes of the app, npm scripts are in package.json. The long commands
themselves are not run; every entry point's --help is.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMAND_START = re.compile(r"^(\./scripts/|(\.venv/bin/)?python3? |(\.venv/bin/)?pip |pip install|uvicorn |curl |cd web)")


def bash_blocks(text: str) -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")
        lines += [line for line in block.splitlines() if line.strip()]
    return lines


def inline_commands(text: str) -> list[str]:
    return [span for span in re.findall(r"`([^`\n]+)`", text) if COMMAND_START.match(span)]


def documented_commands() -> list[tuple[str, str]]:
    """(where, command line) for every command the project documents."""
    found = []
    for doc in ("README.md", "DEVELOPERS.md"):
        text = (REPO / doc).read_text()
        found += [(f"{doc} block", line) for line in bash_blocks(text)]
        found += [(f"{doc} inline", span) for span in inline_commands(text)]
    for card in sorted(REPO.glob("models/*/command.txt")):
        found += [(str(card.relative_to(REPO)), line) for line in card.read_text().splitlines() if line.strip()]
    for card in sorted(REPO.glob("models/*/README.md")) + [REPO / "campaign" / "README.md"]:
        found += [(str(card.relative_to(REPO)), span) for span in inline_commands(card.read_text())]
        found += [(f"{card.relative_to(REPO)} block", line) for line in bash_blocks(card.read_text())]
    # Usage lines in module docstrings and script headers ("    python -m ...", "#   ./scripts/...").
    for path in sorted([*REPO.glob("training/*.py"), *REPO.glob("ferlive/*.py"), *REPO.glob("bench/*.py"),
                        REPO / "export" / "convert.py", REPO / "server.py", *REPO.glob("scripts/*.sh")]):
        text = path.read_text()
        if path.suffix == ".py":
            doc = re.match(r'\s*(?:#[^\n]*\n)*\s*"""(.*?)"""', text, re.S)
            lines = doc.group(1).splitlines() if doc else []
        else:
            lines = [line.lstrip("#") for line in text.splitlines() if line.startswith("#")]
        for line in lines:
            line = line.strip()
            if COMMAND_START.match(line):
                found.append((f"{path.relative_to(REPO)} usage", line.split("->")[0]))
    return found


def split_commands(line: str) -> list[list[str]]:
    line = re.sub(r"(^|\s)#.*$", "", line)  # a trailing comment
    words = [w if re.fullmatch(r"\.\[[\w,]+\]", w) else w.strip("[]")  # optional parts: `[--flip-average]`
             for w in shlex.split(line)]
    commands, current = [], []
    for word in words:
        if word in ("&&", ";", "||", "|"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    return [c for c in commands + [current] if c]


@functools.cache
def help_text(*entry: str) -> str:
    """--help of an entry point, e.g. ('-m', 'training.train') or ('export/convert.py',)."""
    r = subprocess.run([sys.executable, *entry, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, f"{' '.join(entry)} --help failed:\n{r.stderr[-2000:]}"
    return r.stdout


def check_flags(entry: tuple[str, ...], words: list[str], where: str):
    text = help_text(*entry)
    for word in words:
        if word.startswith("--"):
            flag = word.split("=")[0]
            assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", text), f"{where}: {flag} is not an option of {' '.join(entry)}"


@functools.cache
def app_paths() -> set[str]:
    sys.path.insert(0, str(REPO))
    from server import app

    return {route.path for route in app.routes}


def check_command(words: list[str], where: str, cwd: Path):
    program = words[0].removeprefix(".venv/bin/")
    args = words[1:]
    if program == "cd":
        return
    if program in ("pip", "python", "python3") and args[:2] == ["-m", "pip"]:
        program, args = "pip", args[2:]
    if program == "pip":
        assert args[0] in ("install", "download"), f"{where}: pip {args[0]}"
        extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        for i, arg in enumerate(args):
            if arg == "-r":
                assert (REPO / args[i + 1]).is_file(), f"{where}: no file {args[i + 1]}"
            match = re.fullmatch(r"\.\[(.+)\]", arg)
            if arg == "-e":
                target = args[i + 1]
                assert target == "." or re.fullmatch(r"\.\[(\w+(,\w+)*)\]", target), f"{where}: pip install -e {target}"
                for extra in re.findall(r"\w+", target[1:]):
                    assert extra in extras, f"{where}: pyproject.toml has no extra {extra!r}"
            elif match:
                for extra in match.group(1).split(","):
                    assert extra in extras, f"{where}: pyproject.toml has no extra {extra!r}"
        return
    if program in ("python", "python3"):
        if args[0] == "-m":
            module = args[1]
            if module in sys.stdlib_module_names:  # python -m venv, ...
                return
            assert (REPO / module.replace(".", "/")).with_suffix(".py").is_file() or \
                (REPO / module.replace(".", "/") / "__main__.py").is_file(), f"{where}: no module {module}"
            rest = args[2:]
            entry = ("-m", module)
            if module == "ferlive":  # subcommands, as its --help lists them: {predict,serve,evaluate}
                subcommands = re.search(r"\{([\w,]+)\}", help_text("-m", "ferlive")).group(1).split(",")
                assert rest and rest[0] in subcommands, f"{where}: python -m ferlive {rest[:1]}"
                entry, rest = ("-m", module, rest[0]), rest[1:]
            check_flags(entry, rest, where)
        else:
            script = args[0]
            assert (REPO / script).is_file(), f"{where}: no script {script}"
            check_flags((script,), args[1:], where)
        return
    if program.startswith("./scripts/"):
        path = REPO / program
        assert path.is_file() and os.access(path, os.X_OK), f"{where}: {program} is not an executable script"
        return
    if program == "uvicorn":
        assert args[0] == "server:app" and "app = FastAPI(" in (REPO / "server.py").read_text(), where
        return
    if program == "curl":
        for url in [a for a in args if a.startswith("http")]:
            path = re.sub(r"^https?://[^/]+", "", url).split("?")[0]
            assert path in app_paths(), f"{where}: the app has no route {path}"
        return
    if program == "git":  # e.g. `git archive COMMIT campaign/NAME`: a campaign folder at an earlier epoch
        assert args[0] in ("archive", "clone", "add", "commit", "log", "show"), f"{where}: git {args[0]}"
        if args[0] == "archive":
            assert (REPO / args[-1]).is_dir(), f"{where}: no folder {args[-1]}"
        return
    if program == "tar":
        return
    if program == "npm":
        if args[0] == "run":
            scripts = json.loads((cwd / "package.json").read_text())["scripts"]
            assert args[1] in scripts, f"{where}: package.json has no script {args[1]}"
        else:
            assert args[0] in ("ci", "install"), f"{where}: npm {args[0]}"
        return
    raise AssertionError(f"{where}: unknown program {program!r}; teach tests/test_commands.py how to check it")


COMMANDS = documented_commands()


def test_the_docs_document_commands():
    where = {w.split()[0] for w, _ in COMMANDS}
    assert {"README.md", "DEVELOPERS.md", "models/fernet/command.txt"} <= where, where
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("where, line", COMMANDS, ids=[f"{w}: {l[:60]}" for w, l in COMMANDS])
def test_documented_command_names_what_exists(where, line):
    cwd = REPO
    for words in split_commands(line):
        words = [w for w in words if w != "..."]
        if words[0] == "cd":
            cwd = cwd / words[1]
        check_command(words, where, cwd)


@pytest.mark.parametrize("entry", [("-m", "training.train"), ("-m", "training.evaluate"), ("-m", "training.release"),
                                   ("-m", "training.branch"), ("-m", "training.soup"), ("-m", "training.reparam"),
                                   ("-m", "ferlive", "predict"), ("-m", "ferlive", "serve"), ("export/convert.py",),
                                   *[(str(p.relative_to(REPO)),) for p in sorted(REPO.glob("bench/*.py"))]],
                         ids=lambda entry: " ".join(entry))
def test_every_entry_point_answers_help(entry):
    assert "usage:" in help_text(*entry)


def test_export_install_hint_is_a_command_that_works(tmp_path):
    """Without the converter, export/convert.py says how to install it; that hint is itself a
    documented, checkable command (a wrong hint costs a user more than none)."""
    code = ("import sys, runpy; sys.modules['tensorflowjs'] = None; "
            "sys.argv = ['export/convert.py', '--out', sys.argv[1]]; runpy.run_path('export/convert.py', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bundle")], cwd=REPO, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode != 0
    hint = re.search(r"(pip install [^\n]+)", r.stderr)
    assert hint, r.stderr[-1000:]
    for words in split_commands(hint.group(1)):
        check_command(words, "export/convert.py's hint", REPO)
    assert "--no-deps" in hint.group(1)
    assert hint.group(1) in (REPO / "README.md").read_text()  # the same command README gives
