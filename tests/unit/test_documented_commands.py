"""Every `headstart` command and `--option` that README.md and docs/*.md name exists in the CLI.

The docs are read as a person reads them: a fenced code block is shell, one command a line (a
trailing backslash continues it); an inline code span is a command when it starts with one
(`headstart run ...`, or a subcommand alone: `predict --explain`). An option on a headstart command
must be that subcommand's; one in prose, away from any command, must be some subcommand's. Other
tools' options are told apart by context: those after another program (make, pip, docker, curl,
...) are its own; those of `python -m benchmarks.X` must be in that benchmark's parser, and so must
a prose option no subcommand has, on a page that names the benchmark; a `--beam-args` value is
Beam's, and in a section about Beam or Dataflow an option no subcommand has must be one of Beam's
pipeline options. The few left are in `OTHER_TOOLS_OPTIONS`.
"""

import argparse
import ast
import dataclasses
import functools
import re
import shlex

from pipeline.cli.commands import build_parser
from tests.conftest import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]

# Options of other tools named in prose with nothing around them that says whose they are.
OTHER_TOOLS_OPTIONS = {
    "--model_config_file",  # TF Serving's: how it reads the version labels' models.config (docs/serving.md)
}
# Programs whose options are their own: the docs' shell lines that are not headstart's.
OTHER_PROGRAMS = {"make", "pip", "python", "python3", "pytest", "docker", "podman", "gcloud", "gsutil", "kubectl",
                  "curl", "git", "ruff"}
# Options whose value is itself a list of another tool's flags.
FLAG_VALUED = {"--beam-args"}
# A real option's spelling; a placeholder (`--NAME`, `--no-...`) is none.
OPTION = re.compile(r"--[a-z][a-z0-9_-]*[a-z0-9]")
# An option in running text, outside any code.
PROSE_OPTION = re.compile(r"(?<![\w`-])--[a-z][a-z0-9_-]*[a-z0-9]")
# Inline code: backticks with no blank line between them.
INLINE_CODE = re.compile(r"`((?:[^`\n]|\n(?![ \t]*\n))+)`")
# The fenced blocks read as shell; a ```text or ```json block is not.
SHELL_BLOCKS = {"", "sh", "bash", "shell", "console"}
SEGMENT_SEPARATOR = re.compile(r"\s(?:&&|\|\||\||;)\s")
BENCHMARK_MODULE = re.compile(r"\bbenchmarks[./](\w+)")


@dataclasses.dataclass(frozen=True)
class Command:
    options: frozenset[str]
    actions: tuple[str, ...]  # the choices of its first positional, e.g. `schedule list`


@functools.cache
def cli() -> tuple[frozenset[str], dict[str, Command]]:
    """The top-level options, and each subcommand of the real `headstart` parser."""
    parser = build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    commands = {}
    for name, sub in subparsers.choices.items():
        choices = next((action.choices for action in sub._actions if not action.option_strings and action.choices),
                       ())
        commands[name] = Command(frozenset(o for action in sub._actions for o in action.option_strings),
                                 tuple(choices))
    return frozenset(o for action in parser._actions for o in action.option_strings), commands


@functools.cache
def any_command_options() -> frozenset[str]:
    top, commands = cli()
    return top.union(*(command.options for command in commands.values()))


@functools.cache
def benchmark_options(module: str) -> frozenset[str]:
    """The options `benchmarks/<module>.py` declares, read from its source (its parser is built in main)."""
    path = REPO_ROOT / "benchmarks" / f"{module}.py"
    if not path.exists():
        return frozenset()
    calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"]
    return frozenset({"-h", "--help"} | {arg.value for call in calls for arg in call.args
                                         if isinstance(arg, ast.Constant) and str(arg.value).startswith("-")})


@functools.cache
def beam_options() -> frozenset[str]:
    """Every flag of Beam's pipeline options (Dataflow's and the direct runner's included)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parser = argparse.ArgumentParser(add_help=False, conflict_handler="resolve")
    pending, seen = [PipelineOptions], set()
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                sub._add_argparse_args(parser)
                pending.append(sub)
    return frozenset(o for action in parser._actions for o in action.option_strings)


class Checker:
    """Reads one markdown text and collects what it names that does not exist, as `file:line: ...`."""

    def __init__(self, text: str, name: str):
        self.name, self.text, self.lines, self.problems = name, text, text.splitlines(), []
        self.code: list[str | None] = [None] * len(self.lines)  # shell, other (```text), fence, or prose
        self.section = [""] * len(self.lines)  # the text of the section each line is in

    def check(self) -> list[str]:
        self._find_code_and_sections()
        self._check_code_blocks()
        self._check_prose()
        return self.problems

    def _find_code_and_sections(self) -> None:
        block, starts = None, [0]
        for index, line in enumerate(self.lines):
            fence = re.match(r"\s*```\s*(\w*)", line)
            if fence:
                block = None if block else ("shell" if fence.group(1) in SHELL_BLOCKS else "other")
            self.code[index] = "fence" if fence else block
            if not self.code[index] and re.match(r"#{1,6} ", line):
                starts.append(index)
        starts.append(len(self.lines))
        for start, end in zip(starts, starts[1:]):
            text = "\n".join(self.lines[start:end])
            self.section[start:end] = [text] * (end - start)

    def _report(self, line: int, what: str) -> None:
        self.problems.append(f"{self.name}:{line + 1}: {what}")

    def _line_of(self, start: int, token: str) -> int:
        """The first line from `start` on that holds `token` (a command may run over several)."""
        return next((index for index in range(start, len(self.lines)) if token in self.lines[index]), start)

    def _check_code_blocks(self) -> None:
        index = 0
        while index < len(self.lines):
            start, logical = index, ""
            while self.code[index] == "shell":
                logical += self.lines[index]
                if not logical.endswith("\\") or index + 1 == len(self.lines):
                    break
                logical, index = logical[:-1], index + 1  # a shell continuation: backslash-newline is nothing
            if logical:
                self._check_shell(logical, start)
            elif self.code[index] == "other":  # a ```text or ```json block: its options are prose
                for option in PROSE_OPTION.findall(self.lines[index]):
                    self._check_loose_option(option, index)
            index += 1

    def _check_shell(self, text: str, start: int) -> None:
        comment = re.search(r"(?:^|\s)#\s(.*)$", text)
        if comment:
            text = text[:comment.start()]
        command = None
        for segment in SEGMENT_SEPARATOR.split(text):
            command = self._check_command(_tokens(segment), start) or command
        # `# or --exclude FILE` beside a command is about that command; alone, it is prose.
        self._check_options(OPTION.findall(comment.group(1)) if comment else [], start, command)

    def _check_command(self, tokens: list[str], start: int, inline: bool = False) -> str | None:
        """Checks one command's options; its headstart subcommand, if it is one."""
        program = tokens[0] if tokens else ""
        if program == "headstart" or program.endswith("bin/headstart"):
            return self._check_headstart(tokens[1:], start)
        if inline and program in cli()[1]:  # `predict --explain`: a subcommand named in prose
            return self._check_headstart(tokens, start)
        program = program.rsplit("/", 1)[-1]
        module = BENCHMARK_MODULE.fullmatch(tokens[2]) if tokens[1:2] == ["-m"] and len(tokens) > 2 else None
        if program.startswith("python") and module:
            self._check_options(tokens[3:], start, tokens[2], benchmark_options(module.group(1)))
        elif program not in OTHER_PROGRAMS:
            self._check_options(tokens, start, None)
        return None

    def _check_headstart(self, args: list[str], start: int) -> str | None:
        top, commands = cli()
        if not args or args[0].startswith("-"):
            self._check_options(args, start, "headstart", top)
            return None
        if args[0] not in commands:
            if re.fullmatch(r"[a-z][a-z-]*", args[0]):
                self._report(self._line_of(start, args[0]), f"unknown command `headstart {args[0]}`")
            return None
        actions = commands[args[0]].actions
        action = args[1] if len(args) > 1 else ""
        if actions and re.fullmatch(r"[a-z][a-z-]*", action) and action not in actions:
            self._report(self._line_of(start, action), f"unknown subcommand `headstart {args[0]} {action}` "
                         f"(it takes {', '.join(actions)})")
        self._check_options(args[1:], start, args[0])
        return args[0]

    def _check_options(self, tokens: list[str], start: int, owner: str | None,
                       known: frozenset[str] | None = None) -> None:
        """Checks the options among `tokens`: those of `owner`, a headstart subcommand unless `known` is given."""
        if known is None and owner is not None:
            known = cli()[1][owner].options
        skip = False
        for token in tokens:
            name = token.split("=", 1)[0]
            if skip or not OPTION.fullmatch(name):
                skip = False
                continue
            skip = token in FLAG_VALUED  # `--beam-args "--runner=..."`: the next token is Beam's
            if known is not None and name not in known:
                shown = f"headstart {owner}" if owner in cli()[1] else owner
                self._report(self._line_of(start, token), f"`{shown}` has no option {name}")
            elif known is None:
                self._check_loose_option(name, start)

    def _check_loose_option(self, option: str, line: int) -> None:
        """An option named away from any command: some headstart command's, or by context another tool's."""
        if option in any_command_options() or option in OTHER_TOOLS_OPTIONS:
            return
        # A benchmark's options where the page names that benchmark; Beam's in a section about Beam.
        known = frozenset().union(*(benchmark_options(module) for module in BENCHMARK_MODULE.findall(self.text)))
        if re.search(r"\bBeam\b|\bDataflow", self.section[line]):
            known |= beam_options()
        if option not in known:
            self._report(self._line_of(line, option), f"no headstart command has the option {option}")

    def _check_prose(self) -> None:
        prose = "\n".join("" if code else line for line, code in zip(self.lines, self.code))
        for span in INLINE_CODE.finditer(prose):
            self._check_command(_tokens(span.group(1)), prose.count("\n", 0, span.start()), inline=True)
        outside = INLINE_CODE.sub(lambda span: re.sub(r"[^\n]", " ", span.group(0)), prose)
        for match in PROSE_OPTION.finditer(outside):
            self._check_loose_option(match.group(0), outside.count("\n", 0, match.start()))


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: prose, not shell
        return text.split()


def problems_in(text: str, name: str) -> list[str]:
    return Checker(text, name).check()


def test_every_documented_command_and_option_exists():
    problems = [problem for path in DOCS
                for problem in problems_in(path.read_text(), str(path.relative_to(REPO_ROOT)))]
    assert not problems, "the docs name what the CLI does not have:\n" + "\n".join(problems)


def test_the_checker_finds_what_does_not_exist():
    text = "\n".join([
        "# Title",
        "```",
        "headstart run --source photos/ --no-such-option 3 \\",
        "    --epochs 2 --beam-args=--runner=DataflowRunner   # or --no-such-either",
        "make image IMAGE=x --whatever && .venv/bin/headstart serve --epochs 5",
        "headstart schedule lsit --host h",
        "python -m benchmarks.bench --rows 2 --no-such-bench-option",
        "```",
        "Prose: `headstart trian`, `predict --explain`, `--tune-seconds`, and --not-an-option.",
        "## Not about the runner",
        "`--machine_type` is no headstart option.",
    ])
    assert problems_in(text, "fake.md") == [
        "fake.md:3: `headstart run` has no option --no-such-option",
        "fake.md:4: `headstart run` has no option --no-such-either",
        "fake.md:5: `headstart serve` has no option --epochs",
        "fake.md:6: unknown subcommand `headstart schedule lsit` (it takes list, pause, resume, update, delete)",
        "fake.md:7: `benchmarks.bench` has no option --no-such-bench-option",
        "fake.md:9: unknown command `headstart trian`",
        "fake.md:11: no headstart command has the option --machine_type",
        "fake.md:9: no headstart command has the option --not-an-option",  # running text comes after the code
    ]


def test_the_checker_takes_what_exists():
    text = "\n".join([
        "```",
        "headstart run --source photos/ --no-use-cache --beam-args=--runner=DataflowRunner,--project=P",
        "headstart schedule list --host h   # or update ID --cron ...",
        "```",
        "`submit --vertex`, `--param NAME=...`, `--no-...`, `headstart --help`.",
        "## On Dataflow",
        "`--machine_type` and `--subnetwork` are Beam's; `python -m benchmarks.serve` takes",
        "`--seconds 20 --models tta`.",
    ])
    assert problems_in(text, "fake.md") == []

