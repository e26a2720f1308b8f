"""The German catalog is complete and current: every marked string of the templates and the Python sources
(dashboard and queues) is in it, translated, with the same placeholders and every plural form, and the
committed .mo holds exactly what the .po says. No GNU gettext is needed: the sources are read the way
`makemessages` reads them (Django's own `templatize` for templates, the Python AST for code, with the
keywords makemessages gives xgettext) and the .mo with the standard library."""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.utils.translation.template import templatize

from dashboard.translation import translated
from queues.messages import Message, either, gettext_lazy, joined, ngettext_lazy, pgettext_lazy

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "dashboard", ROOT / "queues")
LOCALE = ROOT / "dashboard" / "locale"
LOCALES = ("de",)
# The call names makemessages extracts from Python (xgettext's defaults and Django's keywords):
# name -> (index of the context or None, index of the singular, index of the plural or None).
KEYWORDS = {
    "gettext": (None, 0, None),
    "_": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2),
    "npgettext_lazy": (0, 1, 2),
}
# A gettext call in templatize's output: its name, then string literals (either quote) and other text.
CALL = re.compile(r"""\b(?:n?p?gettext|_)\((?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^()'"])*\)""")
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?[sdiruxXfFeEgGc%]")


@dataclass
class Entry:
    """One message of a .po file."""

    msgid: str
    context: str | None = None
    plural: str | None = None
    strings: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        """How gettext looks it up."""
        return self.context, self.msgid


def _unquote(line: str) -> str:
    assert line.startswith('"') and line.endswith('"'), line
    text: str = ast.literal_eval(line)
    return text


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file (the header is the entry with msgid "")."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        entry = Entry("")
        target: tuple[str, int] | None = None
        values: dict[tuple[str, int], str] = {}
        for raw in block.splitlines():
            line = raw.strip()
            if line.startswith("#~"):
                entry.obsolete = True
                line = line[2:].strip()
                if not line:
                    continue
            elif line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
                continue
            elif line.startswith("#"):
                continue
            if line.startswith('"'):
                assert target is not None, f"{path}: a string without a keyword: {line}"
                values[target] += _unquote(line)
                continue
            keyword, _, rest = line.partition(" ")
            match = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            if match:
                target = ("msgstr", int(match.group(1)))
            else:
                assert keyword in {"msgctxt", "msgid", "msgid_plural", "msgstr"}, f"{path}: {line}"
                target = (keyword, 0)
            values[target] = _unquote(rest)
        if ("msgid", 0) not in values:
            continue
        entry.msgid = values[("msgid", 0)]
        entry.context = values.get(("msgctxt", 0))
        entry.plural = values.get(("msgid_plural", 0))
        entry.strings = {index: text for (name, index), text in values.items() if name == "msgstr"}
        entries.append(entry)
    return entries


def _strings(node: ast.Call, spec: tuple[int | None, int, int | None]) -> tuple[str | None, str, str | None]:
    def literal(index: int | None) -> str | None:
        if index is None:
            return None
        argument = node.args[index]
        assert isinstance(argument, ast.Constant) and isinstance(argument.value, str), ast.dump(argument)
        return argument.value

    context, singular, plural = (literal(index) for index in spec)
    assert singular is not None
    return context, singular, plural


def _python_messages(source: str) -> dict[tuple[str | None, str], str | None]:
    found: dict[tuple[str | None, str], str | None] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        # xgettext goes by the called name, with or without an object before it (translation.gettext).
        func = node.func
        name = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        )
        if name not in KEYWORDS or not node.args:
            continue
        spec = KEYWORDS[name]
        if any(index is not None and index >= len(node.args) for index in spec):
            continue
        if not all(
            isinstance(node.args[index], ast.Constant) for index in spec if index is not None
        ):  # a variable: nothing xgettext can extract (the state names are extracted where made)
            continue
        context, singular, plural = _strings(node, spec)
        found[(context, singular)] = plural
    return found


def extracted() -> dict[tuple[str | None, str], str | None]:
    """Every (context, msgid) the sources mark for translation, with its plural form."""
    found: dict[tuple[str | None, str], str | None] = {}
    for top in SOURCES:
        for path in sorted(top.rglob("*")):
            if "migrations" in path.parts or "locale" in path.parts or "static" in path.parts:
                continue
            if path.suffix == ".py":
                found.update(_python_messages(path.read_text(encoding="utf-8")))
            elif path.suffix == ".html":
                # What makemessages hands xgettext for a template: gettext calls in Python syntax.
                python = templatize(path.read_text(encoding="utf-8"), origin=str(path))
                for call in CALL.finditer(python):
                    found.update(_python_messages(call.group(0)))
    return found


@pytest.fixture(scope="module")
def sources() -> dict[tuple[str | None, str], str | None]:
    return extracted()


def test_the_sources_mark_their_strings(sources):
    """The extraction finds templates, the dashboard's Python and queues' sentences (a smoke check of
    the scanner itself, so that an empty scan cannot pass the tests below)."""
    assert (None, "Queues") in sources
    assert sources[(None, "%(counter)s queue")] == "%(counter)s queues"
    assert ("action", "Retry") in sources
    assert (None, "Job %(job)s no longer exists.") in sources
    assert ("job state", "waiting-children") in sources
    assert (None, "Redis is unreachable.") in sources


@pytest.mark.parametrize("locale", LOCALES)
def test_every_marked_string_is_in_the_catalog(locale, sources):
    entries = {entry.key: entry for entry in read_po(LOCALE / locale / "LC_MESSAGES" / "django.po")}
    missing = sorted(str(key) for key in sources if key not in entries)
    assert not missing, f"run scripts/messages.py: not in the {locale} catalog: {missing}"
    plural_changed = sorted(str(key) for key, plural in sources.items() if entries[key].plural != plural)
    assert not plural_changed, f"plural forms changed: {plural_changed}"


@pytest.mark.parametrize("locale", LOCALES)
def test_the_catalog_holds_no_stale_entries(locale, sources):
    entries = read_po(LOCALE / locale / "LC_MESSAGES" / "django.po")
    stale = sorted(str(entry.key) for entry in entries if entry.msgid and entry.key not in sources)
    assert not stale, f"run scripts/messages.py: no longer in the sources: {stale}"
    assert not [entry.key for entry in entries if entry.obsolete], "obsolete (#~) entries"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_entry_is_translated_with_its_placeholders(locale):
    entries = read_po(LOCALE / locale / "LC_MESSAGES" / "django.po")
    header = next(entry for entry in entries if entry.msgid == "")
    assert "fuzzy" not in header.flags
    assert f"Language: {locale}\n" in header.strings[0]
    plurals = int(re.search(r"nplurals=(\d+)", header.strings[0]).group(1))  # type: ignore[union-attr]
    problems = []
    for entry in entries:
        if not entry.msgid:
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {entry.key}")
        expected = set(range(plurals)) if entry.plural is not None else {0}
        if set(entry.strings) != expected or not all(entry.strings.values()):
            problems.append(f"untranslated: {entry.key}")
            continue
        for index, text in entry.strings.items():
            source = entry.msgid if index == 0 or entry.plural is None else entry.plural
            wanted = sorted(name for name in PLACEHOLDER.findall(source) if name)
            if sorted(name for name in PLACEHOLDER.findall(text) if name) != wanted:
                problems.append(f"placeholders differ: {entry.key}[{index}]")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_compiled_catalog_matches_the_po(locale):
    """The committed .mo is what compilemessages makes of the .po: the same messages, the same words."""
    entries = read_po(LOCALE / locale / "LC_MESSAGES" / "django.po")
    with (LOCALE / locale / "LC_MESSAGES" / "django.mo").open("rb") as file:
        compiled = gettext.GNUTranslations(file)
    catalog: dict[object, str] = compiled._catalog  # type: ignore[attr-defined]
    expected: dict[object, str] = {}
    for entry in entries:
        msgid = entry.msgid if entry.context is None else f"{entry.context}\x04{entry.msgid}"
        if entry.plural is None:
            expected[msgid] = entry.strings[0]
        else:
            for index, text in entry.strings.items():
                expected[(msgid, index)] = text
    # msgfmt leaves the POT-Creation-Date out of the compiled header.
    expected[""] = re.sub(r"POT-Creation-Date: [^\n]*\n", "", str(expected[""]))
    assert catalog == expected, "run scripts/messages.py (or compilemessages) to compile the .po again"
    assert (
        compiled.ngettext("%(counter)s queue", "%(counter)s queues", 2) == expected[("%(counter)s queue", 1)]
    )


def test_a_message_is_its_english_sentence_and_remembers_how_it_was_made():
    message = gettext_lazy("Job %(job)s removed.", job="a%b")
    assert message == "Job a%b removed." and isinstance(message, str)
    assert (message.template, dict(message.params)) == ("Job %(job)s removed.", {"job": "a%b"})
    plural = ngettext_lazy(
        "Drained %(count)d job from %(queue)s.", "Drained %(count)d jobs from %(queue)s.", 1, queue="q"
    )
    assert plural == "Drained 1 job from q."
    assert ngettext_lazy("%(count)d job", "%(count)d jobs", 3) == "3 jobs"
    assert pgettext_lazy("job state", "waiting") == "waiting"
    assert either(["a", "b", "c"]) == "a, b or c" and either(["a"]) == "a" and either([]) == ""
    assert joined(["x", "y"]) == "x; y"
    assert isinstance(either(["a", "b"]), Message)


def test_messages_are_translated_where_they_are_shown():
    from django.utils import translation

    from queues.states import state_name

    needed = either([state_name("failed"), state_name("completed")])
    message = gettext_lazy(
        "Job %(job)s is %(state)s now; this needs it %(needed)s.",
        job="w%1",
        state=state_name("active"),
        needed=needed,
    )
    with translation.override("de"):
        assert (
            translated(message)
            == "Job w%1 ist jetzt aktiv; dafür muss er fehlgeschlagen oder abgeschlossen sein."
        )
        assert (
            translated(
                ngettext_lazy(
                    "Drained %(count)d job from %(queue)s.",
                    "Drained %(count)d jobs from %(queue)s.",
                    2,
                    queue="q",
                )
            )
            == "2 Jobs aus q geleert."
        )
        assert translated("plain text stays") == "plain text stays"
    assert translated(message) == str(message) == "Job w%1 is active now; this needs it failed or completed."
