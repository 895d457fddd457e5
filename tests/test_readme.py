"""The README runs as written: every command in its ```bash blocks is run here (or, for the two
set-up commands' install and test-suite halves, by `.ci/run`, checked here), and its Python
example runs as a doctest. A command added to the README that nothing runs fails
`test_every_readme_command_has_a_runner`.

The commands run in a scratch folder, with `TEXTCNN_DATA_DIR` (where a command sets it) pointing
at a 400-sentence sample of SST-2 instead of the whole set. Two things differ from the README,
both to keep the suite fast and safe beside other runs: the server takes a free port instead of
8000 (and curl's URL follows it), and `textcnn compare` gets the small-run flags of
`CHEAPER["compare"]` appended.
"""

from __future__ import annotations

import doctest
import json
import os
import queue
import re
import shlex
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from test_default_recipe import reviews_csv, small_data_dir  # noqa: F401 - a fixture

from conftest import ROOT
from textcnn.cli import main

README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
SETUP = [  # the README's first two lines of commands: their behaviour is a contract
    'pip install torch==2.13.0 -e ".[dev,plots,pretrained]" && TEXTCNN_DATA_DIR=../shared/data '
    "textcnn train --dataset sst2",
    "TEXTCNN_DATA_DIR=../shared/data python -m pytest --doctest-modules textcnn tests",
]
CHEAPER = {"compare": ["--text-epochs", "1", "--image-epochs", "1", "--threads", "1"]}


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def without_comment(line: str) -> str:
    """The line up to its comment (a ``#`` outside quotes), as written."""
    words = shlex.split(line, comments=True)
    for cut in (m.start() for m in re.finditer(r"\s#", line)):
        if shlex.split(line[:cut]) == words:
            return line[:cut].strip()
    return line.strip()


def readme_commands(text: str) -> list[str]:
    """Each command of the ```bash blocks, as written: comments dropped, continued lines joined."""
    lines = [without_comment(line) for block in fenced_blocks(text, "bash")
             for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line]


def parts(command: str) -> list[list[str]]:
    """A command's `&&`-joined parts, each as words."""
    return [shlex.split(part) for part in command.split(" && ")]


def kind(words: list[str]) -> str:
    """Which runner takes these words: env assignments first are skipped."""
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words = words[1:]
    if words[:2] == ["pip", "install"]:
        return "pip"
    if words[:3] == ["python", "-m", "pytest"]:
        return "pytest"
    if words[:1] == ["textcnn"]:
        return "serve-background" if words[1:2] == ["serve"] and words[-1] == "&" else "textcnn"
    if words[:1] == ["curl"]:
        return "curl"
    return "none"


def test_readme_is_short_and_starts_with_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    assert readme_commands(text)[:2] == SETUP
    first_block = text.index("```bash")
    assert "virtual environment" in text[:first_block] and "../shared/data" in text[:first_block]


def test_every_readme_command_has_a_runner():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    unrun = [c for c in commands for words in parts(c) if kind(words) == "none"]
    assert not unrun, f"README commands no test runs (add a runner in {__file__}): {unrun}"


def test_readme_links_point_at_files_of_the_repository():
    links = re.findall(r"\]\(([^)#]+)\)", README.read_text(encoding="utf-8"))
    assert links and all((ROOT / link).is_file() for link in links if "://" not in link), links


def test_ci_runs_the_install_and_the_test_command():
    """`.ci/run` is what CI executes: it makes the virtual environment the README asks for,
    installs at least the README's extras (and the docs one) at the same torch pin, builds the
    documentation site strictly and runs the README's second command with `TEXTCNN_DATA_DIR`
    set."""
    ci = CI.read_text(encoding="utf-8").splitlines()
    pip = next(shlex.split(line) for line in ci if line.startswith("pip install"))
    readme_pip = parts(SETUP[0])[0]
    extras = lambda words: set(re.search(r"\[(.*)\]", words[-1]).group(1).split(","))  # noqa: E731
    assert "torch==2.13.0" in pip and extras(readme_pip) | {"docs"} <= extras(pip)
    assert any("mkdocs build --strict" in line for line in ci)  # the site builds, links checked
    assert "python3 -m venv .venv" in ci and ". .venv/bin/activate" in ci
    assert any(line.startswith("export TEXTCNN_DATA_DIR=") for line in ci)
    assert ci[-1] == shlex.join(shlex.split(SETUP[1])[1:])


# -- running the tour -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Tour:
    """Runs README commands in order in one folder, holding the background server."""

    def __init__(self, folder: Path, data_dir: Path, capsys, monkeypatch):
        self.folder, self.data_dir = folder, data_dir
        self.capsys, self.monkeypatch = capsys, monkeypatch
        self.port, self.server, self.outputs = free_port(), None, {}

    def env(self, words: list[str]) -> list[str]:
        self.monkeypatch.delenv("TEXTCNN_DATA_DIR", raising=False)
        while re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            name = words.pop(0).split("=")[0]
            assert name == "TEXTCNN_DATA_DIR", f"a variable the tour does not set: {name}"
            self.monkeypatch.setenv(name, str(self.data_dir))
        return words

    def run(self, command: str) -> None:
        for words in parts(command):
            how = kind(words)
            words = self.env(list(words))
            if how == "textcnn":
                argv = words[1:] + CHEAPER.get(words[1], [])
                code = main(argv)
                out, err = self.capsys.readouterr()
                assert code == 0, f"{command}: exit {code}: {err}"
                self.outputs[command] = out
            elif how == "serve-background":
                self.start_server(words[1:-1])
            elif how == "curl":
                self.outputs[command] = self.curl(words[1:])
            # pip and pytest: run by .ci/run (test_ci_runs_the_install_and_the_test_command)

    def start_server(self, argv: list[str]) -> None:
        argv = [str(self.port) if prev == "--port" else a
                for prev, a in zip([None, *argv[:-1]], argv, strict=True)]
        self.server = subprocess.Popen([sys.executable, "-m", "textcnn", *argv], cwd=self.folder,
                                       stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        log = self.server.stderr  # drained into `lines`, so the server never blocks on it
        self.drain = threading.Thread(target=lambda: [lines.put(line) for line in log], daemon=True)
        self.drain.start()
        seen = ""
        while "listening on" not in seen:
            seen = lines.get(timeout=120)  # a bound on a hung start, not a speed claim
            assert self.server.poll() is None, f"textcnn serve exited: {seen}"

    def curl(self, args: list[str]) -> dict:
        headers, body, url = {}, None, None
        args = [a for a in args if a != "-s"]
        while args:
            flag = args.pop(0)
            if flag == "-H":
                name, value = args.pop(0).split(":", 1)
                headers[name] = value.strip()
            elif flag == "-d":
                body = args.pop(0).encode()
            else:
                url = flag
        url = "http://" + url.replace("localhost:8000", f"127.0.0.1:{self.port}")
        request = urllib.request.Request(url, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def close(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=60)
            self.drain.join(timeout=60)  # it ends at the closed pipe's end
            self.server.stderr.close()


@pytest.fixture(scope="module")
def tour_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    reviews_csv(folder / "reviews.csv")
    return folder


@pytest.fixture
def tour(tour_folder, small_data_dir, capsys, monkeypatch):  # noqa: F811 - the fixture
    monkeypatch.chdir(tour_folder)
    from textcnn import recipes
    from textcnn.contrib.studies import compare

    monkeypatch.setattr(compare, "SPEED_SECONDS", 0.2)
    # the tour checks what each command does, not how long the recipe trains: on the 400-row
    # sample its 400 optimizer steps would be 50 epochs
    recipe = recipes.recipe_data()
    monkeypatch.setattr(recipes, "recipe_data", lambda: recipes.with_settings(
        recipe, {"train.min_steps": 0, "train.epochs": 2}))
    tour = Tour(tour_folder, small_data_dir, capsys, monkeypatch)
    yield tour
    tour.close()


def test_every_readme_command_runs_as_written(tour, tour_folder):
    commands = readme_commands(README.read_text(encoding="utf-8"))
    for command in commands:
        tour.run(command)
    config = json.loads((tour_folder / "runs" / "sst2" / "config.json").read_text())
    assert config["heads"] == {"label": ["negative", "positive"]}  # the head the README names
    predict = next(c for c in commands if c.startswith("textcnn predict"))
    rows = [json.loads(line) for line in tour.outputs[predict].splitlines()]
    assert [row["text"] for row in rows] == ["a gorgeous, witty film", "a dull mess"]
    assert all(len(row["predictions"]["label"]) == 2 for row in rows)  # --top-k 2
    explain = next(c for c in commands if c.startswith("textcnn explain"))
    heads = json.loads(tour.outputs[explain].splitlines()[0])["heads"]
    assert list(heads) == ["label"] and len(heads["label"]["windows"]) == 2
    curl = next(c for c in commands if c.startswith("curl"))
    assert list(tour.outputs[curl]["predictions"][0]) == ["label"]
    reviews = json.loads((tour_folder / "runs" / "reviews" / "config.json").read_text())
    assert reviews["train"]["epochs"] == 10 and list(reviews["heads"]) == ["stars"]
    assert (tour_folder / "compare-report" / "report.md").is_file()


def test_the_readme_python_example_runs(tour, tour_folder):
    if not (tour_folder / "runs" / "sst2").is_dir():
        tour.run(SETUP[0])
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    blocks = fenced_blocks(README.read_text(encoding="utf-8"), "python")
    assert blocks and all(">>>" in block for block in blocks)
    for i, block in enumerate(blocks):
        runner.run(parser.get_doctest(block, {}, f"README python block {i}", str(README), 0))
    assert runner.summarize(verbose=False) == doctest.TestResults(0, sum(
        len(parser.get_examples(block)) for block in blocks))
    assert os.getcwd() == str(tour_folder)
