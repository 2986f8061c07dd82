"""Turn simulated frames into Arrow tables, one table at a time.

Nothing here is random: every choice was drawn in :mod:`reverse_etl.datagen.simulate`. Strings are built
with Arrow compute kernels on whole columns; per-person strings (emails in each spelling, phones in each
format, device ids) are built once per chunk and rows pick from them with a single ``take``.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reverse_etl.datagen import vocab as v
from reverse_etl.datagen.schema import TABLES
from reverse_etl.datagen.simulate import ANON_KIOSK, Config, Frame, campaign_times, localise

N_MESS = 5  # spelling variants of an email: as-is, Title Case, UPPER, leading space, Title + trailing spaces

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_PAIRS = np.stack([_HEX[np.arange(256) >> 4], _HEX[np.arange(256) & 15]], axis=1)
_UUID_HEX_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _fixed_width(chars: np.ndarray) -> pa.Array:
    """An (m, w) uint8 array of ASCII as an Arrow string column, without a Python object per row."""
    m, w = chars.shape
    offsets = np.arange(0, (m + 1) * w, w, dtype=np.int32)
    data = np.ascontiguousarray(chars).reshape(-1)
    return pa.Array.from_buffers(pa.string(), m, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def uuids(words: np.ndarray) -> pa.Array:
    """Version-4 UUID strings from 128 random bits per row."""
    m = words.shape[0]
    raw = words.astype(">u8").view(np.uint8).reshape(m, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    out = np.full((m, 36), ord("-"), dtype=np.uint8)
    out[:, _UUID_HEX_POS] = _HEX_PAIRS[raw].reshape(m, 32)
    return _fixed_width(out)


def hex16(words: np.ndarray) -> pa.Array:
    m = words.shape[0]
    raw = words.astype(">u8").view(np.uint8).reshape(m, 8)
    return _fixed_width(_HEX_PAIRS[raw].reshape(m, 16))


def num(x: np.ndarray, width: int = 0) -> pa.Array:
    s = pc.cast(pa.array(x), pa.string())
    return pc.utf8_lpad(s, width, padding="0") if width else s


def ts(x: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(x, type=pa.timestamp("us"), mask=mask)


def money(x: np.ndarray) -> pa.Array:
    return pa.array(np.round(x, 2), type=pa.float64())


@functools.lru_cache(maxsize=256)
def strings(values: tuple[str | None, ...]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def _indices(idx: np.ndarray, mask: np.ndarray | None, dtype: type) -> pa.Array:
    idx = np.asarray(idx)
    null = idx < 0 if mask is None else (mask | (idx < 0))
    return pa.array(np.where(null, 0, idx).astype(dtype), mask=null if null.any() else None)


def pick(values: tuple[str, ...] | pa.Array, idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """``values[idx]`` as plain strings, null where ``mask`` (or where idx < 0)."""
    arr = values if isinstance(values, pa.Array) else strings(values)
    return pc.take(arr, _indices(idx, mask, np.int64))


def cat(values: tuple[str | None, ...], idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Like :func:`pick` for a small vocabulary, dictionary-encoded: no string is copied per row, and
    DuckDB reads the dictionary once per batch."""
    return pa.DictionaryArray.from_arrays(_indices(idx, mask, np.int32), strings(values))


def join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def const(value: str, m: int) -> pa.Array:
    return cat((value,), np.zeros(m, np.int32))


def template(fmt: str, fields: dict[str, pa.Array]) -> pa.Array:
    """A str.format-style template over columns, e.g. ``"+1 ({p1}) {p2}-{p3}"``."""
    parts: list[pa.Array | str] = []
    for literal, field, _, _ in string.Formatter().parse(fmt):
        if literal:
            parts.append(literal)
        if field:
            parts.append(fields[field])
    return join(*parts)


# Phone formats per country: international ones are always used; national ones only for the default
# country (a national number is only unambiguous in the country the data is about).
PHONE_FORMATS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        (
            "+1 {p1} {p2} {p3}",
            "+1{p1}{p2}{p3}",
            "+1 ({p1}) {p2}-{p3}",
            "001 {p1} {p2} {p3}",
            "+1-{p1}-{p2}-{p3}",
        ),
        (
            "({p1}) {p2}-{p3}",
            "{p1}.{p2}.{p3}",
            "{p1}-{p2}-{p3}",
            "1-{p1}-{p2}-{p3}",
            "{p1}{p2}{p3}",
            "1 ({p1}) {p2}-{p3}",
        ),  # fmt: skip
    ),
    (
        ("+44 {p1} {p2} {p3}", "+44{p1}{p2}{p3}", "0044 {p1} {p2} {p3}", "+44 {p1}{p2}{p3}"),
        ("0{p1} {p2} {p3}", "0{p1}{p2}{p3}", "(0{p1}) {p2} {p3}", "0{p1}-{p2}-{p3}"),
    ),
    (
        ("+49 {p1} {p2}{p3}", "+49{p1}{p2}{p3}", "0049 {p1} {p2}{p3}", "+49-{p1}-{p2}{p3}"),
        ("0{p1} {p2}{p3}", "0{p1}/{p2}{p3}", "(0{p1}) {p2} {p3}", "0{p1}-{p2}{p3}"),
    ),
    (
        ("+33 {p1} {a} {b} {c} {d}", "+33{p1}{p2}{p3}", "0033 {p1} {a} {b} {c} {d}", "+33 {p1}{p2}{p3}"),
        ("0{p1} {a} {b} {c} {d}", "0{p1}{p2}{p3}", "0{p1}.{a}.{b}.{c}.{d}", "0{p1}-{a}-{b}-{c}-{d}"),
    ),
)
PHONE_SLOTS = max(len(i) + len(n) for i, n in PHONE_FORMATS)

_FIRST, _, _ = v.flat(v.FIRST_NAMES)
_LAST, _, _ = v.flat(v.LAST_NAMES)
_DOMAINS, _, _ = v.flat(v.EMAIL_DOMAINS)
_CITY_ROWS, _, _ = v.flat(v.CITIES)
_STREETS, _, _ = v.flat(v.STREETS)
_CITY = tuple(c for c, _ in _CITY_ROWS)
_POSTAL_PREFIX = tuple(pfx for _, pfx in _CITY_ROWS)
_LETTERS = tuple("ABDEFGHJLNPQRSTUWXYZ")


def user_ids(g: np.ndarray) -> pa.Array:
    """Ten-digit app user ids, a bijection of the person index (never equal for two persons)."""
    return num(1_000_000_000 + (g * 2_654_435_761 + 97) % 9_000_000_000)


def contact_ids(g: np.ndarray, second: np.ndarray) -> pa.Array:
    x = np.where(second, g + 50_000_000, g)
    return join("C", num((x * 48_271 + 12_345) % 100_000_000, 8))


def order_ids(code: np.ndarray) -> pa.Array:
    return num(1_000_000_000 + (code * 282_475_249 + 12_345) % 9_000_000_000)


def kiosk_ids(cfg: Config) -> tuple[pa.Array, pa.Array]:
    """The shared in-store devices: their anonymous ids and IP addresses."""
    rng = np.random.default_rng([cfg.seed, 0, 0, 1])
    ids = uuids(rng.integers(0, np.iinfo(np.uint64).max, (cfg.n_kiosks, 2), dtype=np.uint64, endpoint=True))
    k = np.arange(cfg.n_kiosks)
    ips = join("203.0.", num(113 + k // 250 % 100), ".", num(k % 250 + 1))
    return ids, ips


def ipv4(x: np.ndarray) -> pa.Array:
    return join(num(x >> 24 & 255), ".", num(x >> 16 & 255), ".", num(x >> 8 & 255), ".", num(x & 255))


class People:
    """Per-person strings for one chunk; rows index them by ``p - g0``."""

    def __init__(self, P: Frame, cfg: Config, kiosks: tuple[pa.Array, pa.Array]) -> None:
        self.P, self.cfg = P, cfg
        g = P["g"]
        n = self.n = g.size
        self.g0 = int(g[0])
        country = P["country"]
        self.person_id = join("P", num(g + 1, 8))
        self.first = pick(_FIRST, P["first"])
        self.last = pick(_LAST, P["last"])

        # Emails: the current address and the one used before a change, in every spelling.
        first_tok = pick(tuple(v.email_token(x) for x in _FIRST), P["first"])
        last_tok = pick(tuple(v.email_token(x) for x in _LAST), P["last"])
        initial = pc.utf8_slice_codeunits(first_tok, 0, 1)
        digits = num(g + 1)

        def local(pattern: np.ndarray) -> pa.Array:
            options = [
                join(first_tok, ".", last_tok, digits),
                join(first_tok, last_tok, digits),
                join(initial, last_tok, digits),
                join(first_tok, "_", last_tok, digits),
                join(last_tok, ".", first_tok, digits),
            ]
            return pc.choose(pa.array(pattern), *options)

        self.email_new = join(local(P["pattern"]), "@", pick(_DOMAINS, P["domain"]))
        self.email_old = join(local(P["old_pattern"]), "@", pick(v.OLD_EMAIL_DOMAINS, P["old_domain"]))
        self.email_old = pc.if_else(pa.array(P["changer"]), self.email_old, pa.scalar(None, pa.string()))
        variants = []
        for base in (self.email_new, self.email_old):
            title = pc.utf8_title(base)
            variants += [base, title, pc.utf8_upper(base), join(" ", base), join(title, "  ")]
        self.emails = pa.concat_arrays(variants)

        # Phones: E.164 and every written format.
        self.phone_allowed = np.array(
            [
                len(i) + (len(nat) if c == cfg.default_country else 0)
                for c, (i, nat) in enumerate(PHONE_FORMATS)
            ]
        )[country]
        parts = self._phone_parts(g, country, P["phone_variant"])
        self.e164 = join("+", pick(v.CALLING_CODES, country), parts["p1"], parts["p2"], parts["p3"])
        slots = []
        c_idx = pa.array(country)
        for slot in range(PHONE_SLOTS):
            per_country = []
            for c, (intl, nat) in enumerate(PHONE_FORMATS):
                formats = intl + (nat if c == cfg.default_country else ())
                if slot < len(formats):
                    per_country.append(template(formats[slot], parts))
                else:
                    per_country.append(pa.nulls(n, pa.string()))
            slots.append(pc.choose(c_idx, *per_country))
        self.phones = pa.concat_arrays(slots)

        self.user_id = user_ids(g)
        self.crm_id = contact_ids(g, np.zeros(n, bool))
        self.crm_id2 = contact_ids(g, np.ones(n, bool))

        # Devices: slots 0-2 are the person's own, slot 3 the kiosk they used (if any).
        kiosk_ids_, kiosk_ips = kiosks
        kiosk = P["kiosk"]
        self.anon = pa.concat_arrays(
            [*(uuids(P["anon_words"][:, d]) for d in range(3)), pick(kiosk_ids_, kiosk)]
        )
        self.ip = pa.concat_arrays([*(ipv4(P["ip"][:, d]) for d in range(3)), pick(kiosk_ips, kiosk)])
        # Codes into vocabularies, per device slot (rendered as dictionary columns).
        self.ua = np.concatenate([P["ua"].T.reshape(-1), np.full(n, len(v.USER_AGENTS))])
        self.lib = np.concatenate([P["lib"].T.reshape(-1), np.zeros(n, np.int8)])
        self.carts = pa.concat_arrays([hex16(P["cart_words"][:, d, 0]) for d in range(3)])

        no = num(P["street_no"])
        street = pick(_STREETS, P["street"])
        self.line1 = pc.if_else(pa.array(country == 2), join(street, " ", no), join(no, " ", street))
        prefix = pick(_POSTAL_PREFIX, P["city"])
        postal = P["postal"]
        gb = join(
            prefix,
            " ",
            num(postal % 10),
            pick(_LETTERS, postal // 10 % 20),
            pick(_LETTERS, postal // 200 % 20),
        )
        self.postal = pc.if_else(pa.array(country == 1), gb, join(prefix, num(postal % 100, 2)))

    @staticmethod
    def _phone_parts(g: np.ndarray, country: np.ndarray, variant: np.ndarray) -> dict[str, pa.Array]:
        """National number groups, unique per person within a country (derived from the index)."""
        # x -> (x * M + c) mod R is a bijection on [0, R) because M is a prime that divides no R.
        m = 1_000_003
        us_rest = 2_000_000 + (g // 16 * m + g % 16 * 500_009) % 8_000_000
        gb_london = 30_000_000 + (g * m + 7_777) % 70_000_000
        gb_mobile = 400_000_000 + (g * m + 12_345) % 500_000_000
        de_rest = 10_000_000 + (g * m + 4_242) % 90_000_000
        fr_rest = 10_000_000 + (g * m + 999) % 90_000_000
        mobile = variant % 2 == 1
        gb_mobile_head = join("7", num(gb_mobile // 1_000_000))
        p1 = pc.choose(
            pa.array(country),
            pick(v.US_AREA_CODES, g % 16),
            pc.if_else(pa.array(mobile), gb_mobile_head, "20"),
            pick(v.DE_PREFIXES, variant % len(v.DE_PREFIXES)),
            pc.if_else(pa.array(mobile), "7", "6"),
        )
        gb_m = (country == 1) & mobile
        rest = np.select(
            [country == 0, gb_m, country == 1, country == 2],
            [us_rest, gb_mobile % 1_000_000, gb_london, de_rest],
            fr_rest,
        )
        # Groups after the prefix: US 3+4 digits, GB mobile 3+3, everything else 4+4.
        split = np.where(gb_m, 1_000, 10_000)
        p2 = pc.utf8_lpad(num(rest // split), 3, padding="0")
        p2 = pc.if_else(pa.array(gb_m | (country == 0)), p2, pc.utf8_lpad(p2, 4, padding="0"))
        p3 = pc.if_else(pa.array(gb_m), num(rest % 1_000, 3), num(rest % 10_000, 4))
        return {
            "p1": p1,
            "p2": p2,
            "p3": p3,
            "a": pc.utf8_slice_codeunits(p2, 0, 2),
            "b": pc.utf8_slice_codeunits(p2, 2, 4),
            "c": pc.utf8_slice_codeunits(p3, 0, 2),
            "d": pc.utf8_slice_codeunits(p3, 2, 4),
        }

    # -- identifier columns ------------------------------------------------------------------------

    def local(self, f: Frame) -> np.ndarray:
        return f["p"] - self.g0

    def email(self, f: Frame) -> pa.Array:
        kind = f["email_kind"].astype(np.int64)
        idx = (kind * N_MESS + f["email_mess"]) * self.n + self.local(f)
        return _junk(pick(self.emails, idx, kind < 0), f["email_junk"], v.EMAIL_JUNK)

    def phone(self, f: Frame) -> pa.Array:
        local = self.local(f)
        allowed = self.phone_allowed[local]
        slot = np.minimum((f["phone_fmt"] * allowed).astype(np.int64), allowed - 1)
        on = f["phone_on"]
        return _junk(
            pick(self.phones, slot * self.n + local, ~on), np.where(on, f["phone_junk"], -1), v.PHONE_JUNK
        )

    def uid(self, f: Frame) -> pa.Array:
        values = pick(self.user_id, self.local(f), ~f["uid_on"])
        values = pc.if_else(pa.array(f["uid_ws"]), join(values, " "), values)
        return _junk(values, f["uid_junk"], v.USER_ID_JUNK)

    def device(self, arr: pa.Array, f: Frame) -> pa.Array:
        anon = f["anon"].astype(np.int64)
        return pick(arr, anon * self.n + self.local(f), anon < 0)

    def device_code(self, codes: np.ndarray, f: Frame) -> np.ndarray:
        """A per-device vocabulary code for each row (-1 for rows without a device)."""
        anon = f["anon"].astype(np.int64)
        return np.where(anon < 0, -1, codes[np.maximum(anon, 0) * self.n + self.local(f)])

    def name(self, f: Frame, mask: np.ndarray | None = None) -> tuple[pa.Array, pa.Array]:
        local = self.local(f)
        return cat(_FIRST, self.P["first"][local], mask), cat(_LAST, self.P["last"][local], mask)

    def place(self, f: Frame, mask: np.ndarray | None = None) -> tuple[pa.Array, pa.Array]:
        """City and country of each row's person."""
        local = self.local(f)
        return cat(_CITY, self.P["city"][local], mask), cat(v.COUNTRIES, self.P["country"][local], mask)

    def person(self, f: Frame) -> pa.Array:
        return pick(self.person_id, self.local(f))


def _junk(values: pa.Array, junk: np.ndarray, vocab: tuple[str, ...]) -> pa.Array:
    if not (junk >= 0).any():
        return values
    return pc.if_else(pa.array(junk >= 0), pick(vocab, junk), values)


def _table(name: str, columns: list[pa.Array]) -> pa.Table:
    names = [c for c, _ in TABLES[name]]
    assert len(names) == len(columns), f"{name}: {len(columns)} columns rendered, {len(names)} declared"
    return pa.Table.from_arrays(columns, names=names)


def _records(source: str, keys: pa.Array, persons: pa.Array) -> pa.Table:
    return pa.Table.from_arrays([const(source, len(keys)), keys, persons], names=["source_table", "record_key", "person_id"])  # fmt: skip


# ---- segment ---------------------------------------------------------------------------------------

_PATHS = tuple(p[1] for p in v.PAGES)
_TITLES = tuple(p[2] for p in v.PAGES)
_PAGE_NAMES = tuple(p[0] for p in v.PAGES)
# The query string of a page view: none, one per campaign (UTM tags), one per site search term.
_SEARCHES = (
    "",
    *(f"?utm_source={s}&utm_medium={m}&utm_campaign={c}" for s, m, c in v.CAMPAIGNS),
    *("?q=" + term.replace(" ", "+") for term in v.PAGE_SEARCH_TERMS),
)
_URLS = tuple(v.SITE + path + search for path in _PATHS for search in _SEARCHES)
_CAMPAIGN_SOURCE = tuple(c[0] for c in v.CAMPAIGNS)
_CAMPAIGN_MEDIUM = tuple(c[1] for c in v.CAMPAIGNS)
_CAMPAIGN_NAME = tuple(c[2] for c in v.CAMPAIGNS)
_USER_AGENTS = (*v.USER_AGENTS, v.KIOSK_USER_AGENT)
_LIBRARIES = ("analytics.js", v.SERVER_LIBRARY[0])
_LIBRARY_VERSIONS = (*v.LIBRARY_VERSIONS, v.SERVER_LIBRARY[1])
_EVENTS = tuple(e[0] for e in v.TRACK_EVENTS)
_EVENT_TEXTS = tuple(e[1] for e in v.TRACK_EVENTS)
_PRODUCT_IDS = tuple(p[0] for p in v.PRODUCTS)
_SKUS = tuple(p[1] for p in v.PRODUCTS)
_PRODUCT_NAMES = tuple(p[2] for p in v.PRODUCTS)
_CATEGORIES = tuple(p[3] for p in v.PRODUCTS)
_PRICE_USD = np.array([p[4] for p in v.PRODUCTS])


def segment_common(people: People, f: Frame) -> tuple[list[pa.Array], dict[str, pa.Array]]:
    """The columns every Segment event table carries, plus page fields the pages table repeats."""
    t, send, net, skew = f["t"], f["send"], f["net"], f["skew"]
    server = f["server"]
    received = t + send + net
    page = f["page"].astype(np.int64)
    campaign = f["campaign"].astype(np.int64)
    search = np.where(campaign >= 0, 1 + campaign, 0)
    if "search_term" in f:
        search = np.where(page == v.PAGE_SEARCH, 1 + len(v.CAMPAIGNS) + f["search_term"], search)
    url = cat(_URLS, page * len(_SEARCHES) + search, server)
    path = cat(_PATHS, page, server)
    referrer = cat(v.REFERRERS, f["referrer"], server)
    title = cat(_TITLES, page, server)
    lib = np.where(server, len(v.LIBRARY_VERSIONS), people.device_code(people.lib, f))
    columns = [
        uuids(f["words"]),
        people.device(people.anon, f),
        people.uid(f),
        ts(received),
        ts(t + skew + send),
        ts(t + net),
        ts(t + skew),
        ts(received + f["load"]),
        people.device(people.ip, f),
        cat(_USER_AGENTS, people.device_code(people.ua, f)),
        url,
        path,
        referrer,
        title,
        cat(_CAMPAIGN_SOURCE, campaign),
        cat(_CAMPAIGN_MEDIUM, campaign),
        cat(_CAMPAIGN_NAME, campaign),
        cat(_LIBRARIES, server.astype(np.int8)),
        cat(_LIBRARY_VERSIONS, lib),
    ]
    return columns, {
        "path": path,
        "url": url,
        "referrer": referrer,
        "title": title,
        "search": cat(_SEARCHES, search),
    }


def _segment_records(source: str, people: People, f: Frame, ids: pa.Array) -> pa.Table:
    keep = pa.array(~f["dup"])
    return _records(source, pc.filter(ids, keep), pc.filter(people.person(f), keep))


def pages(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    common, page = segment_common(people, f)
    yield (
        "segment.pages",
        _table(
            "segment.pages",
            [
                *common,
                cat(_PAGE_NAMES, f["page"]),
                page["path"],
                page["url"],
                page["referrer"],
                page["title"],
                page["search"],
            ],  # fmt: skip
        ),
    )
    yield "ground_truth.records", _segment_records("segment.pages", people, f, common[0])


def identifies(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    common, _ = segment_common(people, f)
    first, last = people.name(f, ~f["names"])
    city, country = people.place(f, ~f["address"])
    extra = [
        people.email(f),
        first,
        last,
        people.phone(f),
        city,
        country,
        pick(people.postal, people.local(f), ~f["address"]),
    ]
    yield "segment.identifies", _table("segment.identifies", [*common, *extra])
    yield "ground_truth.records", _segment_records("segment.identifies", people, f, common[0])


_EVENT_TABLES = {v.EV_PRODUCT_ADDED: "segment.product_added", v.EV_CHECKOUT_STARTED: "segment.checkout_started",
                 v.EV_ORDER_COMPLETED: "segment.order_completed"}  # fmt: skip


def tracks(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    """``tracks`` holds every track call; the three per-event tables hold their own rows again."""
    common, _ = segment_common(people, f)
    etype = f["etype"]
    yield "segment.tracks", _table("segment.tracks", [*common, cat(_EVENTS, etype), cat(_EVENT_TEXTS, etype)])
    yield "ground_truth.records", _segment_records("segment.tracks", people, f, common[0])
    for code, name in _EVENT_TABLES.items():
        sel = np.flatnonzero(etype == code)
        sub = {k: a[sel] for k, a in f.items()}
        sel_arr = pa.array(sel)
        base = [pc.take(c, sel_arr) for c in common]
        base += [cat(_EVENTS, sub["etype"]), cat(_EVENT_TEXTS, sub["etype"])]
        local = people.local(sub)
        cart = pick(people.carts, sub["cart_dev"].astype(np.int64) * people.n + local)
        currency = cat(v.CURRENCIES, sub["currency"])
        has_order = sub["order"] >= 0
        order = pc.if_else(
            pa.array(has_order), order_ids(np.maximum(sub["order"], 0)), pa.scalar(None, pa.string())
        )
        if code == v.EV_PRODUCT_ADDED:
            product = sub["product"]
            extra = [
                cart,
                cat(_PRODUCT_IDS, product),
                cat(_SKUS, product),
                cat(_PRODUCT_NAMES, product),
                money(localise(_PRICE_USD[product], sub["currency"])),
                pa.array(sub["qty"], pa.int32()),
            ]
        elif code == v.EV_CHECKOUT_STARTED:
            extra = [cart, order, money(sub["value"]), currency]
        else:
            extra = [order, money(sub["value"]), money(sub["revenue"]), currency, people.email(sub)]
        yield name, _table(name, base + extra)
        yield "ground_truth.records", _segment_records(name, people, sub, base[0])


def users(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    ids = pick(people.user_id, people.local(f))
    first, last = people.name(f)
    yield (
        "segment.users",
        _table(
            "segment.users",
            [
                ids,
                ts(f["t"]),
                ts(f["t"] + f["load"]),
                people.email(f),
                first,
                last,
                people.phone(f),
                ts(f["created"]),
            ],
        ),
    )
    yield "ground_truth.records", _records("segment.users", ids, people.person(f))


# ---- crm, shop, esp, consent -----------------------------------------------------------------------


def contacts(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    local = people.local(f)
    ids = pc.if_else(pa.array(f["second"]), pick(people.crm_id2, local), pick(people.crm_id, local))
    first, _ = people.name(f)
    last = pick(people.last, local)
    last = pc.if_else(pa.array(f["upper_last"]), pc.utf8_upper(last), last)
    city, country = people.place(f)
    yield (
        "crm.contacts",
        _table(
            "crm.contacts",
            [
                ids,
                people.email(f),
                people.phone(f),
                first,
                last,
                cat(v.COMPANIES, f["company"]),
                cat(v.JOB_TITLES, f["job"]),
                cat(v.LIFECYCLE_STAGES, f["stage"]),
                pick(people.line1, local),
                city,
                pick(people.postal, local),
                country,
                people.uid(f),
                ts(f["created"]),
                ts(f["updated"]),
                pa.array(f["deleted"]),
            ],
        ),
    )
    yield "ground_truth.records", _records("crm.contacts", ids, people.person(f))


def orders(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    local = people.local(f)
    ids = order_ids(f["order"])
    city, country = people.place(f)
    yield (
        "shop.orders",
        _table(
            "shop.orders",
            [
                ids,
                people.uid(f),
                people.email(f),
                people.phone(f),
                cat(v.ORDER_STATUSES, f["status"]),
                cat(v.CURRENCIES, f["currency"]),
                money(f["subtotal"]),
                money(f["tax"]),
                money(f["shipping"]),
                money(f["total"]),
                money(f["refunded"]),
                pick(people.line1, local),
                city,
                pick(people.postal, local),
                country,
                ts(f["t"]),
                ts(f["updated"]),
            ],
        ),
    )
    yield "ground_truth.records", _records("shop.orders", ids, people.person(f))


def order_lines(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    product = f["product"]
    order = order_ids(f["order"])
    ids = join(order, "-", num(f["line_no"]))
    yield (
        "shop.order_lines",
        _table(
            "shop.order_lines",
            [
                ids,
                order,
                cat(_PRODUCT_IDS, product),
                cat(_SKUS, product),
                cat(_PRODUCT_NAMES, product),
                cat(_CATEGORIES, product),
                pa.array(f["qty"], pa.int32()),
                money(f["unit"]),
                money(f["line_total"]),
            ],
        ),
    )
    yield "ground_truth.records", _records("shop.order_lines", ids, people.person(f))


def _campaigns(cfg: Config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    count = campaign_times(cfg).size
    ids = tuple(f"cmp_{c + 1:04d}" for c in range(count))
    themes = v.EMAIL_CAMPAIGN_THEMES
    names = tuple(f"{themes[c * 7 % len(themes)]} #{c + 1}" for c in range(count))
    return ids, names


def email_events(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    ids = uuids(f["words"])
    campaign_ids, campaign_names = _campaigns(people.cfg)
    yield (
        "esp.email_events",
        _table(
            "esp.email_events",
            [
                ids,
                people.email(f),
                cat(v.ESP_EVENT_TYPES, f["etype"]),
                cat(campaign_ids, f["campaign"]),
                cat(campaign_names, f["campaign"]),
                cat(v.CLICK_URLS, f["url"], f["etype"] != v.ESP_CLICK),
                ts(f["t"]),
            ],
        ),
    )
    yield "ground_truth.records", _records("esp.email_events", ids, people.person(f))


def consent_events(people: People, f: Frame) -> Iterator[tuple[str, pa.Table]]:
    ids = uuids(f["words"])
    identifier = pc.choose(
        pa.array(f["id_type"]), people.email(f), people.uid(f), people.device(people.anon, f), people.phone(f)
    )
    yield (
        "consent.consent_events",
        _table(
            "consent.consent_events",
            [
                ids,
                cat(v.CONSENT_ID_TYPES, f["id_type"]),
                identifier,
                cat(v.CONSENT_PURPOSES, f["purpose"]),
                cat(v.CONSENT_STATUSES, f["status"]),
                ts(f["t"]),
                cat(v.CONSENT_SOURCES, f["source"]),
            ],
        ),
    )
    yield "ground_truth.records", _records("consent.consent_events", ids, people.person(f))


# ---- ground truth ----------------------------------------------------------------------------------


def ground_truth(people: People, P: Frame) -> Iterator[tuple[str, pa.Table]]:
    n = people.n
    idx = np.arange(n)
    yield (
        "ground_truth.persons",
        _table(
            "ground_truth.persons",
            [
                people.person_id,
                people.email_new,
                pick(people.e164, idx, ~P["has_phone"]),
                pick(people.user_id, idx, ~P["registered"]),
                pick(people.crm_id, idx, ~P["has_crm"]),
                people.first,
                people.last,
                ts(P["first_seen"]),
            ],
        ),
    )
    used_email, used_anon = P["used_email"], P["used_anon"]
    parts: list[tuple[str, pa.Array, np.ndarray, bool]] = [
        ("email", people.email_new, used_email[:, 0], False),
        ("email", people.email_old, used_email[:, 1], False),
        ("phone", people.e164, P["used_phone"], False),
        ("user_id", people.user_id, P["used_uid"], False),
        *(("anonymous_id", people.anon.slice(d * n, n), used_anon[:, d], False) for d in range(3)),
        ("anonymous_id", people.anon.slice(ANON_KIOSK * n, n), used_anon[:, ANON_KIOSK], True),
        ("crm_contact_id", people.crm_id, P["has_crm"], False),
        ("crm_contact_id", people.crm_id2, P["crm2"], False),
    ]
    for id_type, values, used, shared in parts:
        keep = pa.array(used)
        m = int(used.sum())
        if not m:
            continue
        yield (
            "ground_truth.identifiers",
            pa.Table.from_arrays(
                [
                    const(id_type, m),
                    pc.filter(values, keep),
                    pc.filter(people.person_id, keep),
                    pa.array(np.full(m, shared)),
                ],  # fmt: skip
                names=["identifier_type", "identifier_value", "person_id", "is_shared"],
            ),
        )


Renderer = Callable[[People, Frame], Iterator[tuple[str, pa.Table]]]
RENDERERS: dict[str, Renderer] = {
    "pages": pages,
    "tracks": tracks,
    "identifies": identifies,
    "users": users,
    "contacts": contacts,
    "orders": orders,
    "lines": order_lines,
    "esp": email_events,
    "consent": consent_events,
}
