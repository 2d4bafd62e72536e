"""Every subcommand's ``--help`` renders: argparse expands ``%`` in help texts,
so one unescaped ``%`` in an option's help makes ``imgbench <command> --help``
raise instead of printing (it did, for ``receiver``)."""

from __future__ import annotations

import argparse

import pytest

from imgbench.cli import build_parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("imgbench has no subcommands")


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_subcommand_help_renders(command: str) -> None:
    text = _subcommands()[command].format_help()
    assert text.startswith("usage: ")


def test_top_level_help_renders() -> None:
    assert "receiver" in build_parser().format_help()
