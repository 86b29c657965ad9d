"""Compile every catalogue under locale/ (.po) into the .mo files Django reads.

Babel does it in Python, so a fresh machine needs no GNU gettext: `make run`, `make test`
and the Procfile's release step call this. Fuzzy entries are left out, as msgfmt does.
"""

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compiles every locale/*/LC_MESSAGES/*.po into its .mo, without GNU gettext."

    def handle(self, *args, **options):
        compiled = 0
        for folder in settings.LOCALE_PATHS:
            for po_path in sorted(Path(folder).glob("*/LC_MESSAGES/*.po")):
                with po_path.open("rb") as po_file:
                    catalog = read_po(po_file, locale=po_path.parent.parent.name)
                mo_path = po_path.with_suffix(".mo")
                partial = mo_path.with_suffix(".mo.tmp")
                with partial.open("wb") as mo_file:
                    write_mo(mo_file, catalog)
                partial.replace(mo_path)  # a running server never reads half a file
                compiled += 1
        if options["verbosity"] > 0:
            self.stdout.write(f"Compiled {compiled} catalogues.")
