"""The cell rewrite: which last expressions become ``await __covet_resolve__(...)``."""

from __future__ import annotations

from typing import Any

import pytest

from covet_shell.transform import rewrite

COVET_NAMES = {"User", "Post", "user", "qs"}


def covet(name: str) -> bool:
    return name in COVET_NAMES


R = "await __covet_resolve__"
CASES: list[tuple[str, Any]] = [
    # (cell after IPython's own transforms, expected rewrite or None for "left alone")
    ("User.objects.filter(age__gt=30)", f"{R}(User.objects.filter(age__gt=30))"),
    ("User.objects.count()", f"{R}(User.objects.count())"),
    ("User.objects.all()[:5]", f"{R}(User.objects.all()[:5])"),
    ("qs.values('id')", f"{R}(qs.values('id'))"),
    ("user.posts.all()", f"{R}(user.posts.all())"),
    ("x = 1\nUser.objects.all()  # c\n", f"x = 1\n{R}(User.objects.all())  # c\n"),
    ("User.objects.all();", f"{R}(User.objects.all());"),
    ("(User.objects\n    .filter(a=1))", f"({R}(User.objects\n    .filter(a=1)))"),
    ("User.objects.filter(name='Chloé')", f"{R}(User.objects.filter(name='Chloé'))"),
    ("q = User.objects.all()\nq.filter(a=1)", f"q = User.objects.all()\n{R}(q.filter(a=1))"),
    ("u = await User.objects.first()\nu.posts.all()",
     f"u = await User.objects.first()\n{R}(u.posts.all())"),
    ("get_ipython().run_line_magic('covet_explain', 'User.objects.all()')",
     f"{R}(get_ipython().run_line_magic('covet_explain', 'User.objects.all()'))"),
    ("get_ipython().run_cell_magic('covet_sql', '', 'SELECT 1\\n')",
     f"{R}(get_ipython().run_cell_magic('covet_sql', '', 'SELECT 1\\n'))"),
    ("get_ipython().run_line_magic('covet_log', 'on')\nx = 1",
     f"{R}(get_ipython().run_line_magic('covet_log', 'on'), display=True)\nx = 1"),
    ("for t in ['a', 'b']:\n    get_ipython().run_line_magic('covet_explain', 'User.objects.all()')",
     f"for t in ['a', 'b']:\n    {R}(get_ipython().run_line_magic('covet_explain', "
     "'User.objects.all()'), display=True)"),
    ("if x:\n    pass\nelse:\n    with y:\n        get_ipython().run_line_magic('covet_log', 'on')\n"
     "x = 1",
     f"if x:\n    pass\nelse:\n    with y:\n        {R}(get_ipython().run_line_magic("
     "'covet_log', 'on'), display=True)\nx = 1"),
    ("try:\n    pass\nexcept E:\n    get_ipython().run_line_magic('covet_log', 'off')",
     f"try:\n    pass\nexcept E:\n    {R}(get_ipython().run_line_magic('covet_log', 'off'), "
     "display=True)"),
    # left alone
    ("def f():\n    get_ipython().run_line_magic('covet_log', 'on')", None),
    ("class C:\n    get_ipython().run_line_magic('covet_log', 'on')", None),
    ("await User.objects.all()", None),
    ("x = User.objects.all()", None),
    ("User.objects.all()\nx = 1", None),
    ("len(qs)", None),
    ("other.objects.all()", None),
    ("q = 3\nq.real", None),
    ("qs = 3\nqs.real", None),  # rebound in the cell to something else
    ("get_ipython().run_line_magic('time', 'User.objects.all()')", None),
    ("def f(:", None),  # a syntax error is IPython's to report
    ("", None),
]


@pytest.mark.parametrize(("cell", "expected"), CASES)
def test_rewrite(cell: str, expected: str | None) -> None:
    assert rewrite(cell, covet) == expected
