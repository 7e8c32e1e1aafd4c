"""The README's code blocks run as printed, in a fresh folder, twice in a row (the second run
sees the files the first one saved), and print what they should.

Every ```python and ```sh block runs, except one preceded by the marker line
``<!-- readme-test: skip ... -->`` (the ``make`` set-up).  The Python blocks run in order in
one process, as one session; each command of a shell block runs on its own (a ``\\``
continues a line, ``#`` starts a comment), ``synaptic`` being this checkout's command line.
The folder holds a copy of the repository's ``examples/`` (the README is the checkout's);
``$SYNAPTIC_DATA`` is unset, so files land in its ``data/``, and MNIST comes from the
conftest fixture's folder (the library's own default rule).
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SKIP = "<!-- readme-test: skip"

if not (REPO / "README.md").is_file():  # e.g. the suite run against an installed wheel
    pytest.skip("the README's blocks are tested from the checkout", allow_module_level=True)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


def readme_blocks():
    """[(language, code)] of the README's python and sh blocks, without the skipped ones."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if match.group(1) in ("python", "sh") and not before.startswith(SKIP):
            blocks.append((match.group(1), match.group(2)))
    return blocks


def shell_commands(code):
    commands, current = [], ""
    for line in code.splitlines():
        line = re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            commands.append(current.strip())
        current = ""
    return commands


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mnist_path):
    """(a fresh working folder with examples/, the environment of a user's shell)."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "examples", work / "examples")
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "synaptic"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m synaptic \"$@\"\n")
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "SYNAPTIC_DATA"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(REPO),
               SYNAPTIC_MNIST_DIR=str(mnist_path), PYTHONWARNINGS="always::UserWarning")
    return work, env


def test_the_readme_has_the_blocks_this_test_checks():
    blocks = readme_blocks()
    languages = [lang for lang, _ in blocks]
    assert languages.count("python") >= 2 and languages.count("sh") >= 1
    for lang, code in blocks:  # set-up lines are not run in a scratch folder
        assert not any(c.startswith("make ") for c in shell_commands(code)), \
            f"put a '{SKIP} ... -->' line before the block\n{code}"


def check_python(out):
    accuracies = [float(m) for m in re.findall(r"^(0\.\d+) \[", out, re.MULTILINE)]
    assert len(accuracies) == 1 and accuracies[0] > 0.9, out
    predictions = re.search(r"^0\.\d+ \[([\d ]+)\]", out, re.MULTILINE).group(1).split()
    assert len(set(predictions)) > 3, out  # not the all-9 answer of a set scaled twice
    assert [int(v) for v in re.findall(r"^(\d+)$", out, re.MULTILINE)] == list(range(1, 11))
    reloaded = re.search(r"^the saved file data/trainingset\.digits (0\.\d+)$", out, re.MULTILINE)
    assert reloaded and float(reloaded.group(1)) > 0.9, out


def check_command(command, result):
    out, err = result.stdout, result.stderr
    words = command.split()
    assert "Traceback" not in err, err
    if words[1] == "plot" and "plots need matplotlib" in err:
        assert result.returncode == 2  # the plot extra is not installed: a one-line answer
        return
    assert result.returncode == 0, f"{command}\n{out}\n{err}"
    if words[1] == "train":
        accuracy = float(re.search(r"^validation accuracy: ([0-9.]+)$", out, re.MULTILINE).group(1))
        assert accuracy > 0.85, out
        assert "(the mnist10k recipe, from " in out and "warning" not in err
        if "--stats" in words:
            assert "train cross-entropy" not in out
    elif words[1] == "evaluate":
        assert out.startswith("digits on mnist10k (valid, 2000 samples, scaled)\naccuracy: 0.")
        assert float(out.splitlines()[1].split()[1]) > 0.85
    elif words[1] == "info":
        assert "trained on: mnist10k (scaled)" in out and "parameters: 79510" in out
    elif words[1] == "plot":
        assert out.count("wrote ") == 3


@pytest.mark.parametrize("run", [1, 2])
def test_every_readme_block_runs_as_printed(folder, run):
    work, env = folder
    blocks = readme_blocks()
    python = "\n".join(code for lang, code in blocks if lang == "python")
    result = subprocess.run([sys.executable, "-c", python], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    check_python(result.stdout)
    for lang, code in blocks:
        if lang == "sh":
            for command in shell_commands(code):
                check_command(command, subprocess.run(command, shell=True, cwd=work, env=env,
                                                      capture_output=True, text=True,
                                                      timeout=300))
    saved = sorted(p.name for p in (work / "data").iterdir())
    assert saved == ["neuralnet.digits", "trainingset-header.digits", "trainingset.digits"]
