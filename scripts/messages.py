"""Update the dashboard's translation catalogs from the sources, and compile them.

    .venv/bin/python scripts/messages.py           # every locale in dashboard/locale
    .venv/bin/python scripts/messages.py -l fr     # start (or update) another locale

Needs GNU gettext (Debian: apt-get install gettext); the tests and the app need only the committed
.po and .mo files. Django's `makemessages` runs over dashboard/ and queues/ together: `queues` marks its
sentences with functions named like Django's (see queues/messages.py) and has no catalog of its own,
since the dashboard is where they are shown. Running `django-admin makemessages` inside dashboard/
alone would drop those sentences from the catalog.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import django
from django.conf import settings
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "dashboard" / "locale"


def main() -> None:
    """Run makemessages for the given (or every existing) locale, then compilemessages."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-l", "--locale", action="append", default=[], help="a locale to add or update")
    args = parser.parse_args()
    settings.configure(LOCALE_PATHS=[str(LOCALE)], USE_I18N=True)
    django.setup()
    LOCALE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        # A directory that holds exactly the two packages, so nothing else is read; every message goes
        # to LOCALE_PATHS[0] (dashboard/locale, skipped as a source directory).
        for package in ("dashboard", "queues"):
            os.symlink(ROOT / package, Path(workdir) / package)
        os.chdir(workdir)
        call_command(
            "makemessages",
            locale=args.locale,
            all=not args.locale,
            symlinks=True,
            ignore_patterns=["dashboard/locale", "dashboard/static", "*/migrations/*"],
            add_location="file",
            no_obsolete=True,
            verbosity=1,
        )
    # compilemessages compiles every locale directory below the working directory, and LOCALE_PATHS.
    os.chdir(ROOT / "dashboard")
    call_command("compilemessages", locale=args.locale or None, verbosity=1)


if __name__ == "__main__":
    main()
