"""Benchmark: finding likely duplicate accounts and contacts at 100 k contacts.

Creates a scratch database on the PostgreSQL of ``DATABASE_URL`` (dropped afterwards), runs
the Django migrations and bulk-loads ``--accounts`` accounts with ``--contacts`` contacts
spread over them (seeded names; ``--dup-pct`` % of the accounts get a near-duplicate twin:
other case, legal form, one letter off; the same share of contacts a twin at their account or
their email at another account), then times the selectors the desk page calls and reports
how many planted twins they found.

    .venv/bin/python bench/bench_duplicates.py --accounts 20000 --contacts 100000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._scratch import django_scratch_database  # noqa: E402

WORDS = ["Nord", "Süd", "West", "Ost", "Kälte", "Pumpen", "Anlagen", "Technik", "Food", "Logistik",
         "Metall", "Werk", "Service", "Hydraulik", "Druckluft", "Energie", "Wasser", "Bau",
         "Maschinen", "Systeme", "Antriebe", "Kompressoren", "Automation", "Verpackung"]
FORMS = ["GmbH", "AG", "KG", "GmbH & Co. KG", "SE", "Ltd"]
FIRST = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans", "Ida", "Jonas",
         "Karla", "Lars", "Mia", "Nils", "Olga", "Paul", "Rita", "Sven", "Tina", "Uwe"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=20_000)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--dup-pct", type=float, default=1.0)
    ap.add_argument("--no-numbers", action="store_true",
                    help="names without a number (the selector cannot split the book by "
                         "numbers, only by shared words)")
    ap.add_argument("--contacts-only", action="store_true",
                    help="skip the account search and its all-pairs baseline")
    ap.add_argument("--profile", action="store_true",
                    help="print the top of a cProfile of the contact search")
    ap.add_argument("--baseline-rev", metavar="REV",
                    help="also time the contact search as committed at git revision REV, "
                         "in this process on the same data (before/after)")
    args = ap.parse_args()
    with django_scratch_database():
        return run(args)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from service_crm import models as m

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(42)
    t0 = time.perf_counter()
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < args.accounts:
        k = int(rng.integers(2, 4))
        base = " ".join(str(w) for w in rng.choice(WORDS, size=k, replace=False))
        name = (f"{base} {rng.choice(LAST)} {rng.choice(FIRST)} {rng.choice(FORMS)}"
                if args.no_numbers else f"{base} {len(names)} {rng.choice(FORMS)}")
        if name.casefold() not in seen:
            seen.add(name.casefold())
            names.append(name)
    n_dup = int(args.accounts * args.dup_pct / 100)
    planted_accounts = []
    for i in range(n_dup):  # a twin: upper case, other legal form, one letter dropped
        original = names[i * (args.accounts // max(n_dup, 1))]
        stem = original.rsplit(" ", 1)[0] if not original.endswith("Co. KG") else \
            original.replace(" GmbH & Co. KG", "")
        cut = int(rng.integers(1, max(2, len(stem) // 2)))
        twin = (stem[:cut] + stem[cut + 1:]).upper() + " AG" if i % 2 else stem.upper() + " AG"
        if twin.casefold() in seen:
            continue
        seen.add(twin.casefold())
        names.append(twin)
        planted_accounts.append((original, twin))
    accounts = m.Account.objects.bulk_create([m.Account(name=n) for n in names],
                                             batch_size=5000)
    contacts = []
    for i in range(args.contacts):
        a = accounts[i % args.accounts]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        contacts.append(m.Contact(account=a, name=f"{first} {last}",
                                  email=f"{first}.{last}.{i}@firm{a.pk}.example".lower()))
    n_cdup = int(args.contacts * args.dup_pct / 100)
    for j in range(n_cdup):
        c = contacts[j * (args.contacts // max(n_cdup, 1))]
        if j % 2:  # same person typed again at the same account, one letter off
            contacts.append(m.Contact(account=c.account, name=c.name[:-1],
                                      email=f"other{j}@firm{c.account.pk}.example"))
        else:  # the same address at another account
            contacts.append(m.Contact(account=accounts[(j * 7 + 1) % args.accounts],
                                      name=c.name, email=c.email))
    m.Contact.objects.bulk_create(contacts, batch_size=5000)
    print(f"seeded {len(accounts)} accounts ({len(planted_accounts)} planted twins), "
          f"{len(contacts)} contacts ({n_cdup} planted twins) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    admin = get_user_model().objects.create_superuser("bench", "b@bench.test", "x")

    if not args.contacts_only:
        _accounts(admin, planted_accounts)
    return _contacts(args, admin, n_cdup)


def _accounts(admin: object, planted_accounts: list[tuple[str, str]]) -> None:
    from service_crm import models as m
    from service_crm.selectors.duplicates import account_duplicates_find

    t0 = time.perf_counter()
    pairs = account_duplicates_find(user=admin, limit=100_000)
    took = time.perf_counter() - t0
    by_name = {(p.a_label, p.b_label) for p in pairs} | {(p.b_label, p.a_label) for p in pairs}
    hit = sum((o, t) in by_name for o, t in planted_accounts)
    print(f"accounts: {took:.2f} s, {len(pairs)} pairs, planted twins found "
          f"{hit}/{len(planted_accounts)}", flush=True)
    # Baseline in the same process: every name against every name (the selector before it
    # compared only names that share their numbers or, in a large set, a word).
    from service_crm.selectors.duplicates import _similar_pairs, name_key

    keys = [name_key(n) for n in m.Account.objects.order_by("pk").values_list("name", flat=True)]
    t1 = time.perf_counter()
    n_all = sum(1 for _ in _similar_pairs(keys, 60))
    base = time.perf_counter() - t1
    print(f"accounts, all pairs compared (baseline): {base:.2f} s, {n_all} candidate pairs; "
          f"ratio baseline / selector {base / took:.1f}", flush=True)


def _selector_at(rev: str) -> Any:
    """service_crm/selectors/duplicates.py as committed at ``rev``, loaded as a module."""
    import subprocess
    import types

    src = subprocess.run(["git", "show", f"{rev}:service_crm/selectors/duplicates.py"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"duplicates_at_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(src, f"duplicates.py@{rev}", "exec"), module.__dict__)  # noqa: S102
    return module


def _contacts(args: argparse.Namespace, admin: object, n_cdup: int) -> int:
    from service_crm.selectors.data_quality import data_quality_report
    from service_crm.selectors.duplicates import contact_duplicates_find

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        contact_duplicates_find(user=admin, limit=1_000_000)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(18)
    t0 = time.perf_counter()
    cpairs = contact_duplicates_find(user=admin, limit=1_000_000)
    took = time.perf_counter() - t0
    print(f"contacts: {took:.2f} s, {len(cpairs)} pairs (planted {n_cdup})", flush=True)
    if args.baseline_rev:
        old = _selector_at(args.baseline_rev)
        t0 = time.perf_counter()
        before = old.contact_duplicates_find(user=admin, limit=1_000_000)
        base = time.perf_counter() - t0
        same = [(p.a_id, p.b_id, p.score) for p in before] == \
            [(p.a_id, p.b_id, p.score) for p in cpairs]
        print(f"contacts, selector at {args.baseline_rev}: {base:.2f} s, {len(before)} pairs; "
              f"same pairs and scores: {same}; ratio {base / took:.1f}", flush=True)
    t0 = time.perf_counter()
    checks = data_quality_report(user=admin)
    print(f"data-quality report (every check, duplicates included): "
          f"{time.perf_counter() - t0:.2f} s, "
          + ", ".join(f"{c.key} {c.count}" for c in checks), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
