"""HumanEval's check, run in a separate Python process: isolated mode, a scratch folder, CPU-time, memory and
file-size limits, and a wall-clock timeout. Only used when the user allows code execution."""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def completion_code(answer: str, prompt: str, entry_point: str) -> str:
    """The program to test: the function from the answer's code block (or the answer itself); when the answer
    only continues the body, the prompt comes first."""
    blocks = CODE_BLOCK.findall(answer or "")
    code = max(blocks, key=len) if blocks else (answer or "")
    if f"def {entry_point}" in code:
        header = "\n".join(line for line in prompt.splitlines() if line.startswith(("import ", "from ")))
        return f"{header}\n{code}"
    return prompt + code


def _limits() -> None:  # runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (10, 10))
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def passes(program: str, test: str, entry_point: str, timeout: float = 15.0) -> tuple[bool, str]:
    """(passed, why) for program + the benchmark's test code + check(entry_point)."""
    source = f"{program}\n\n{test}\n\ncheck({entry_point})\n"
    with tempfile.TemporaryDirectory(prefix="swiftall-exec-") as folder:
        path = Path(folder) / "solution.py"
        path.write_text(source)
        try:
            done = subprocess.run([sys.executable, "-I", str(path)], cwd=folder, capture_output=True, text=True,
                                  timeout=timeout, preexec_fn=_limits, env={"PATH": "/usr/bin:/bin"})
        except subprocess.TimeoutExpired:
            return False, f"timed out after {timeout:.0f}s"
    if done.returncode == 0:
        return True, "passed"
    return False, (done.stderr.strip().splitlines() or ["failed"])[-1][:200]
