"""The detection engine is the same on one node and on a cluster's detect worker: what it
speaks for (its share) comes from its view of the bus, and it imports nothing of cluster
mode."""

from __future__ import annotations

import ast
from pathlib import Path

import cityops.detect.engine as engine_module
from cityops.detect.engine import DetectEngine, Whole


def test_the_engine_imports_nothing_of_cluster_mode():
    tree = ast.parse(Path(engine_module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    imported |= {f"{node.module}.{alias.name}" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert not [name for name in imported if "cluster" in name], imported


class _Node:
    def __init__(self, bus) -> None:
        self.bus = bus

    def bus_for(self, component: str):
        assert component == "detect"
        return self.bus


def test_a_node_whose_bus_view_offers_no_share_is_whole():
    engine = DetectEngine(_Node(object()), [])
    assert isinstance(engine.share, Whole)


def test_the_share_comes_from_the_bus_view_before_the_node_starts():
    taken = []

    class View:
        def detect_share(self, node, scenarios):
            taken.append((node, scenarios))
            return "the worker's share"

    node = _Node(View())
    engine = DetectEngine(node, [])
    assert engine.share == "the worker's share"
    assert taken == [(node, [])]
