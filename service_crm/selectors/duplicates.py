"""Likely duplicate accounts and contacts, for the desk to review and merge.

Accounts: the names compared without case, punctuation and legal form ("ACME Kompressoren
GmbH" and "Acme Kompressoren" are the same key), then by fuzzy similarity (rapidfuzz's
token-sort ratio, 0-100), never pairing names whose numbers differ ("Werk 1", "Werk 2"); a
pair whose contacts share a company email domain needs a lower similarity. Contacts: the
same email at two accounts, or at one account a similar name or the same phone number. Office
staff only."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from service_crm.models import Account, Contact
from service_crm.selectors.access import scope_for

LEGAL_FORMS = frozenset({
    "ab", "ag", "as", "bv", "co", "company", "corp", "corporation", "e", "gbr", "gmbh", "inc",
    "kg", "kgaa", "limited", "llc", "ltd", "mbh", "nv", "ohg", "oy", "plc", "sa", "sarl", "se",
    "spa", "srl", "ug", "v",
})
# Addresses at these domains say nothing about the company.
FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "gmx.de", "gmx.net", "web.de", "t-online.de", "yahoo.com",
    "yahoo.de", "outlook.com", "hotmail.com", "icloud.com", "aol.com", "freenet.de", "mail.de",
    "posteo.de", "proton.me", "protonmail.com",
})
_WORD = re.compile(r"[^\w]+", re.UNICODE)
_NUMBER = re.compile(r"\d+")
CHUNK = 1000  # rows of the similarity matrix computed at a time (memory ~ CHUNK x n bytes)


def name_key(name: str) -> str:
    """A company name reduced to what identifies it.

    >>> name_key("ACME Kompressoren GmbH & Co. KG ")
    'acme kompressoren'
    """
    words = [w for w in _WORD.sub(" ", name.casefold().replace("&", " ")).split()
             if w not in LEGAL_FORMS]
    return " ".join(words)


@dataclass(frozen=True)
class DuplicatePair:
    """Two records that look like one: `score` 0-100, `reasons` in words for the desk."""

    kind: str  # "account" or "contact"
    a_id: int
    b_id: int
    a_label: str
    b_label: str
    score: int
    reasons: tuple[str, ...]


def _similar_pairs(keys: list[str], threshold: int) -> Iterable[tuple[int, int, int]]:
    """(i, j, score) for i < j with token-sort similarity >= threshold, in chunks so memory
    stays ~CHUNK x len(keys) bytes."""
    n = len(keys)
    for start in range(0, n, CHUNK):
        block = process.cdist(keys[start:start + CHUNK], keys, scorer=fuzz.token_sort_ratio,
                              score_cutoff=threshold, dtype=np.uint8, workers=1)
        rows, cols = np.nonzero(block)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if i < c:
                yield i, c, int(block[r, c])


BLOCK = 2000  # names compared all against all at most; larger sets are split by shared words


def _candidate_groups(keys: list[str], numbers: list[tuple[str, ...]]) -> Iterable[list[int]]:
    """Sets of names (indices) worth comparing with each other. Names whose numbers differ are
    never one company, so they never share a set; a set of more than :data:`BLOCK` names with
    the same numbers is split into the names sharing each word (a word that more than BLOCK
    names share, such as "service", groups nothing), so the work grows with the sets, not with
    the square of the whole book. Two names alike only in such common words are missed then."""
    by_number: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, n in enumerate(numbers):
        by_number[n].append(i)
    for members in by_number.values():
        if len(members) <= BLOCK:
            if len(members) > 1:
                yield members
            continue
        by_word: dict[str, list[int]] = defaultdict(list)
        for i in members:
            for word in set(keys[i].split()):
                by_word[word].append(i)
        yield from (group for group in by_word.values() if 1 < len(group) <= BLOCK)


def account_duplicates_find(*, user: object, threshold: int = 90, domain_threshold: int = 60,
                            limit: int = 200) -> list[DuplicatePair]:
    """Likely duplicate accounts, most alike first (office staff; others get none)."""
    if not scope_for(user=user).everything:
        return []
    rows_vat = list(Account.objects.order_by("pk").values_list("pk", "name", "vat_id"))
    rows = [(pk, name) for pk, name, _ in rows_vat]
    keys = [name_key(name) for _, name in rows]
    domains: dict[int, set[str]] = defaultdict(set)
    for account_id, email in Contact.objects.values_list("account_id", "email"):
        domain = email.rpartition("@")[2].lower()
        if domain and domain not in FREE_MAIL:
            domains[account_id].add(domain)
    found: dict[tuple[int, int], DuplicatePair] = {}
    # "Werk 1" and "Werk 2" are alike, but two plants, not a typo: only names with the same
    # numbers are compared.
    numbers = [tuple(_NUMBER.findall(k)) for k in keys]
    seen: set[tuple[int, int]] = set()
    index = {pk: i for i, (pk, _) in enumerate(rows)}
    by_domain: dict[str, list[int]] = defaultdict(list)
    for account_id, names in domains.items():
        for domain in names:
            if account_id in index:
                by_domain[domain].append(index[account_id])
    # Accounts whose contacts share a company domain are compared too, however their names
    # were grouped (a lower similarity makes them a pair).
    sharing = [sorted(g) for g in by_domain.values() if 1 < len(g) <= BLOCK]
    for group in [*_candidate_groups(keys, numbers), *sharing]:
        for gi, gj, score in _similar_pairs([keys[k] for k in group],
                                            min(threshold, domain_threshold)):
            i, j = group[gi], group[gj]
            if (i, j) in seen or numbers[i] != numbers[j]:
                continue
            seen.add((i, j))
            _account_pair(found, rows, keys, domains, i, j, score, threshold, domain_threshold)
    # One VAT id is one legal entity: its accounts are a pair whatever their names.
    by_vat: dict[str, list[int]] = defaultdict(list)
    for i, (_, _, vat) in enumerate(rows_vat):
        if vat:
            by_vat[vat].append(i)
    for vat, group in by_vat.items():
        for gi, i in enumerate(group[:BLOCK]):
            for j in group[gi + 1:BLOCK]:
                (a_id, a_name), (b_id, b_name) = rows[i], rows[j]
                pair = found.get((a_id, b_id))
                reasons = (*(pair.reasons if pair else ()), f"same VAT id {vat}")
                score = pair.score if pair else int(fuzz.token_sort_ratio(keys[i], keys[j]))
                found[(a_id, b_id)] = DuplicatePair("account", a_id, b_id, a_name, b_name,
                                                    score, reasons)
    return sorted(found.values(), key=lambda p: (-p.score, p.a_id, p.b_id))[:limit]


def _account_pair(found: dict[tuple[int, int], DuplicatePair], rows: list[tuple[int, str]],
                  keys: list[str], domains: dict[int, set[str]], i: int, j: int, score: int,
                  threshold: int, domain_threshold: int) -> None:
    """Record accounts `i` < `j` (rows in pk order) as likely duplicates if they qualify."""
    (a_id, a_name), (b_id, b_name) = rows[i], rows[j]
    reasons = []
    if keys[i] == keys[j]:
        reasons.append("same name apart from case, punctuation or legal form")
    else:
        reasons.append(f"names {score} % alike")
    shared = domains.get(a_id, set()) & domains.get(b_id, set())
    if shared:
        reasons.append("contacts at the same email domain " + ", ".join(sorted(shared)))
    if score >= threshold or (shared and score >= domain_threshold):
        found[(a_id, b_id)] = DuplicatePair("account", a_id, b_id, a_name, b_name, score,
                                            tuple(reasons))


def contact_duplicates_find(*, user: object, threshold: int = 90,
                            limit: int = 200) -> list[DuplicatePair]:
    """Likely duplicate contacts, most alike first: the same email at two accounts (the
    accounts may be one), or at one account a similar name or the same phone number.

    Blocked by the normalised email and by account, read as plain rows (no model instances:
    building 100 k of them was four fifths of the time); labels only for the pairs found."""
    if not scope_for(user=user).everything:
        return []
    rows = list(Contact.objects.order_by("pk").values_list(
        "pk", "account_id", "name", "email", "phone"))
    by_email: dict[str, list[int]] = defaultdict(list)
    by_account: dict[int, list[int]] = defaultdict(list)
    for k, (_, account_id, _, email, _) in enumerate(rows):
        by_email[email.lower()].append(k)
        by_account[account_id].append(k)
    found: dict[tuple[int, int], tuple[int, int, int, tuple[str, ...]]] = {}
    for same in by_email.values():
        for n, i in enumerate(same):
            for j in same[n + 1:]:
                found[(rows[i][0], rows[j][0])] = (
                    i, j, 100, ("same email at two accounts: merge the accounts",))
    for people in by_account.values():
        if len(people) < 2:
            continue
        names = [" ".join(rows[k][2].casefold().split()) for k in people]
        for gi, gj, score in _similar_pairs(names, 0):
            i, j = people[gi], people[gj]
            a, b = rows[i], rows[j]
            reasons = []
            if score >= threshold:
                reasons.append(f"names {score} % alike")
            same_phone = bool(a[4]) and a[4] == b[4]
            if same_phone:
                reasons.append(f"same phone {a[4]}")
            if reasons and (a[0], b[0]) not in found:
                found[(a[0], b[0])] = (i, j, max(score, 95 if same_phone else 0),
                                       tuple(reasons))
    best = sorted(found.items(), key=lambda kv: (-kv[1][2], kv[0]))[:limit]
    account_names = dict(Account.objects.filter(pk__in={
        rows[k][1] for _, (i, j, _, _) in best for k in (i, j)}).values_list("pk", "name"))

    def label(k: int) -> str:
        _, account_id, name, email, _ = rows[k]
        return f"{name} <{email}> ({account_names[account_id]})"

    return [DuplicatePair("contact", a_id, b_id, label(i), label(j), score, reasons)
            for (a_id, b_id), (i, j, score, reasons) in best]
