"""The README's Python example runs as written."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_python_api_example_runs_as_written(tmp_path):
    result = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("26 cells computed, 0 reused")
    assert "| method | clean ↑ |" in out and "| raml[norm=hard] |" in out
    assert re.search(r"raml\[norm=hard\]\s+clean\s+0\.\d{3}", out)
    assert out.rstrip().endswith("(359, 10)")  # 359 test samples, 10 class probabilities
    again = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert again.stdout.startswith("0 cells computed, 26 reused")
