"""Every ```python block of the docs that promise runnable examples is run here, so the
docs stay true."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ["docs/from-the-tutorial.md", "README.md"]


def _blocks():
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            yield pytest.param(block, id=f"{doc}#{i}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_doc_example_runs(code):
    # The README's program prints 1000 progress bars as Keras would: keep the test quiet.
    code = code.replace("model.fit(x, y, epochs=1000)", "model.fit(x, y, epochs=1000, verbose=0)")
    exec(compile(code, "<doc>", "exec"), {})
