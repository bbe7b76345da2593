"""`python -m lightnas.models NAME`: a supernet's decision points and costs."""

import subprocess
import sys

from lightnas.commands.models import main


def test_models_cli_prints_summary(capsys):
    assert main(["meliusnet22", "--input", "3x32x32", "--classes", "100"]) == 0
    out = capsys.readouterr().out
    assert "34 decision points" in out and "OPs" in out and "stage4.block4.improvement" in out


def test_python_m_lightnas_models_is_the_command():
    done = subprocess.run(
        [sys.executable, "-m", "lightnas.models", "resnet18", "--input", "3x32x32"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("resnet18  stem=thumbnail  input=3x32x32\n")
    assert "base network: params" in done.stdout
