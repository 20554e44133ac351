"""The house seen from its imports (callvault_local.layering): every arrow points down, no cycle."""

from __future__ import annotations

from pathlib import Path

from callvault_local import layering
from callvault_local.layering import Floor

SOURCES = (("src", "pkg"),)
FLOORS = (
    Floor("bottom", ("pkg", "pkg.low", "pkg.also_low"), "imports nothing"),
    Floor("middle", ("pkg.mid", "pkg.sub", "pkg.sub.*"), "over the bottom"),
    Floor("top", ("pkg.high",), "over everything"),
)


def write(root: Path, modules: dict[str, str], folder: str = "src") -> Path:
    for name, source in modules.items():
        path = root / folder / (name + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def check(root: Path, modules: dict[str, str]) -> layering.Report:
    base = {"pkg/__init__": "", "pkg/low": "", "pkg/also_low": "", "pkg/mid": "", "pkg/high": ""}
    return layering.check(write(root, {**base, **modules}), FLOORS, SOURCES)


def test_the_repository_has_no_upward_arrow_no_cycle_and_every_module_on_a_floor() -> None:
    report = layering.check()
    assert report.clean, "\n".join(report.lines())
    assert len(report.arrows) > 100  # it read the real tree's imports


def test_arrows_down_and_across_a_floor_are_clean(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        {
            "pkg/high": "from pkg import mid\nimport pkg.low\n",
            "pkg/mid": "from pkg.low import thing\n",
            "pkg/low": "from . import also_low\n",
        },
    )
    assert report.clean, report.lines()
    assert {(a.source, a.target) for a in report.arrows} == {
        ("pkg.high", "pkg.mid"),
        ("pkg.high", "pkg.low"),
        ("pkg.mid", "pkg.low"),
        ("pkg.low", "pkg.also_low"),
    }


def test_an_upward_arrow_fails_even_inside_a_function(tmp_path: Path) -> None:
    report = check(tmp_path, {"pkg/low": "def late():\n    from pkg.mid import thing\n    return thing\n"})
    assert not report.clean
    (arrow,) = report.upward
    assert (arrow.source, arrow.target, arrow.line, arrow.in_function) == ("pkg.low", "pkg.mid", 2, True)
    assert any("pkg.low -> pkg.mid" in line and "[bottom -> middle]" in line for line in report.lines())


def test_a_cycle_within_a_floor_fails(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        {"pkg/low": "import pkg.also_low\n", "pkg/also_low": "def f():\n    from pkg import low\n"},
    )
    assert report.upward == [] and report.cycles == [["pkg.also_low", "pkg.low"]]
    assert not report.clean


def test_a_package_s_submodules_and_relative_imports_resolve(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        {
            "pkg/sub/__init__": "from .items import put\nfrom pkg.sub import keys\n",
            "pkg/sub/items": "from pkg.sub.keys import KEY\nfrom ..low import x\n",
            "pkg/sub/keys": "from .. import also_low\n",
        },
    )
    assert report.clean, report.lines()
    assert {(a.source, a.target) for a in report.arrows} == {
        ("pkg.sub", "pkg.sub.items"),
        ("pkg.sub", "pkg.sub.keys"),
        ("pkg.sub.items", "pkg.sub.keys"),
        ("pkg.sub.items", "pkg.low"),
        ("pkg.sub.keys", "pkg.also_low"),
    }


def test_imports_only_for_the_type_checker_are_no_arrow(tmp_path: Path) -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import high\nelse:\n    import pkg.mid\n"
    report = check(tmp_path, {"pkg/low": source})
    assert [(a.source, a.target) for a in report.upward] == [("pkg.low", "pkg.mid")]


def test_a_module_on_no_floor_fails(tmp_path: Path) -> None:
    report = check(tmp_path, {"pkg/stray": ""})
    assert report.unplaced == ["pkg.stray"] and not report.clean


def test_the_command_exits_non_zero_on_a_breach(tmp_path: Path) -> None:
    assert layering.main([]) == 0
    layer = {"callvault/__init__": "", "callvault/errors": "from callvault import ingest\n", "callvault/ingest": ""}
    write(tmp_path, layer, "layers/callvault")
    write(tmp_path, {"callvault_local/__init__": ""})
    assert layering.main([str(tmp_path)]) == 1
