"""Simulate one block of persons: who they are and what they did, as numeric arrays.

A block is a fixed run of ``BLOCK`` persons with its own random stream, seeded from (seed, first index,
block number). Everything random is drawn here; the renderer only turns these arrays into strings, so
the output does not depend on how many blocks are rendered together (the chunk size).

Identifier columns are encoded, not rendered:

* email columns: ``email_kind`` (-1 none, 0 the current address, 1 the address used before an email
  change), ``email_mess`` (index into the spelling variants), ``email_junk`` (-1, or an index into
  ``vocab.EMAIL_JUNK`` that replaces the value);
* phone columns: ``phone_on``, ``phone_fmt`` (a uniform draw that picks the written format) and
  ``phone_junk``;
* user id columns: ``uid_on``, ``uid_junk``, ``uid_ws`` (stray whitespace);
* anonymous ids: ``anon`` (-1 none, 0-2 the person's devices, 3 the person's kiosk).

All times are int64 microseconds since the Unix epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reverse_etl.datagen import vocab as v

BLOCK = 1000
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
NEVER = np.iinfo(np.int64).max // 4

KIOSK_RATE = 0.02  # share of persons who use an in-store kiosk
PERSONS_PER_KIOSK = 150
MAX_ORDERS = 60  # order ids are built from (person, order number < 100)
ANON_KIOSK = 3

Frame = dict[str, np.ndarray]


@dataclass(frozen=True)
class Config:
    """What every block needs to know about the run."""

    seed: int
    customers: int
    first_index: int
    start_us: int
    end_us: int
    default_country: int
    n_kiosks: int


def kiosk_count(customers: int) -> int:
    return max(1, round(customers * KIOSK_RATE / PERSONS_PER_KIOSK))


def concat(frames: list[Frame]) -> Frame:
    frames = [f for f in frames if f]
    if not frames:
        return {}
    return {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}


def take(frame: Frame, idx: np.ndarray) -> Frame:
    return {k: a[idx] for k, a in frame.items()}


def _pick(
    rng: np.random.Generator, offsets: np.ndarray, lengths: np.ndarray, group: np.ndarray
) -> np.ndarray:
    return offsets[group] + (rng.random(group.size) * lengths[group]).astype(np.int64)


def _choice(rng: np.random.Generator, weights: tuple[float, ...], size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(p.size, size=size, p=p / p.sum()).astype(np.int16)


def _words(rng: np.random.Generator, size: int) -> np.ndarray:
    """128 random bits per row, rendered as a UUID."""
    return rng.integers(0, np.iinfo(np.uint64).max, size=(size, 2), dtype=np.uint64, endpoint=True)


def _within(rng: np.random.Generator, lo: np.ndarray, span: np.ndarray) -> np.ndarray:
    return lo + (rng.random(lo.size) * span).astype(np.int64)


def _email(rng: np.random.Generator, kind: np.ndarray, mess: tuple[float, ...], junk: float) -> Frame:
    n = kind.size
    junk_idx = np.where(rng.random(n) < junk, rng.integers(0, len(v.EMAIL_JUNK), n), -1).astype(np.int8)
    return {
        "email_kind": kind.astype(np.int8),
        "email_mess": _choice(rng, mess, n).astype(np.int8),
        "email_junk": junk_idx,
    }


def _phone(rng: np.random.Generator, on: np.ndarray, junk: float) -> Frame:
    n = on.size
    junk_idx = np.where(rng.random(n) < junk, rng.integers(0, len(v.PHONE_JUNK), n), -1).astype(np.int8)
    return {"phone_on": on, "phone_fmt": rng.random(n).astype(np.float32), "phone_junk": junk_idx}


def _uid(
    rng: np.random.Generator, on: np.ndarray, junk_when_off: float, junk_when_on: float = 0.001
) -> Frame:
    n = on.size
    rate = np.where(on, junk_when_on, junk_when_off)
    junk_idx = np.where(rng.random(n) < rate, rng.integers(0, len(v.USER_ID_JUNK), n), -1).astype(np.int8)
    return {"uid_on": on, "uid_junk": junk_idx, "uid_ws": np.zeros(n, dtype=bool)}


def _no_email(n: int) -> Frame:
    return {
        "email_kind": np.full(n, -1, np.int8),
        "email_mess": np.zeros(n, np.int8),
        "email_junk": np.full(n, -1, np.int8),
    }


MESS_EVENTS = (0.86, 0.06, 0.02, 0.04, 0.02)
MESS_SHOP = (0.80, 0.10, 0.03, 0.05, 0.02)
MESS_CRM = (0.74, 0.16, 0.05, 0.03, 0.02)
MESS_ESP = (0.97, 0.03, 0.0, 0.0, 0.0)


class Block:
    """One block's simulation; :meth:`run` returns the frames the renderer needs."""

    def __init__(self, cfg: Config, block_no: int) -> None:
        self.cfg = cfg
        self.g0 = cfg.first_index + block_no * BLOCK
        self.n = min(BLOCK, cfg.first_index + cfg.customers - self.g0)
        self.rng = np.random.default_rng([cfg.seed, cfg.first_index, block_no])

    # -- persons -----------------------------------------------------------------------------------

    def persons(self) -> Frame:
        rng, n, cfg = self.rng, self.n, self.cfg
        country = _choice(rng, v.COUNTRY_WEIGHTS, n).astype(np.int8)
        _, f_off, f_len = v.flat(v.FIRST_NAMES)
        _, l_off, l_len = v.flat(v.LAST_NAMES)
        _, d_off, d_len = v.flat(v.EMAIL_DOMAINS)
        _, c_off, c_len = v.flat(v.CITIES)
        _, s_off, s_len = v.flat(v.STREETS)
        first_seen = _within(rng, np.full(n, cfg.start_us), np.full(n, cfg.end_us - cfg.start_us))
        remaining = cfg.end_us - first_seen
        # Most people are active for days or weeks, a few for the whole window.
        span = np.minimum((rng.exponential(1.0, n) * 40 * DAY).astype(np.int64), remaining - 1)
        registered = rng.random(n) < 0.6
        quick = rng.random(n) < 0.35
        delay = np.where(quick, rng.integers(0, 30 * MINUTE, n), (rng.random(n) ** 2 * span).astype(np.int64))
        signup = np.where(registered, first_seen + np.minimum(delay, span), NEVER)
        changer = rng.random(n) < 0.08
        change_at = np.where(changer, first_seen + (rng.uniform(0.2, 0.9, n) * span).astype(np.int64), -NEVER)
        n_dev = _choice(rng, (0.55, 0.32, 0.13), n).astype(np.int8) + 1
        login = np.full((n, 3), NEVER, dtype=np.int64)
        login[:, 0] = signup
        later = signup[:, None] + (rng.exponential(1.0, (n, 2)) * 15 * DAY).astype(np.int64)
        has_dev = np.arange(1, 3)[None, :] < n_dev[:, None]
        login[:, 1:] = np.where(registered[:, None] & has_dev & (later < cfg.end_us), later, NEVER)
        kiosk = np.where(rng.random(n) < KIOSK_RATE, rng.integers(0, cfg.n_kiosks, n), -1)
        has_crm = rng.random(n) < np.where(registered, 0.4, 0.2)
        buyer = rng.random(n) < np.where(registered, 0.55, 0.22)
        subscriber = rng.random(n) < np.where(registered, 0.5, 0.3)
        web = rng.random(n) < 0.9
        web |= ~(has_crm | buyer | subscriber) | (kiosk >= 0)
        sub_at = np.where(
            registered,
            signup + rng.integers(0, DAY, n),
            _within(rng, first_seen, span),
        )
        sub_at = np.minimum(sub_at, cfg.end_us - 1)
        return {
            "g": np.arange(self.g0, self.g0 + n, dtype=np.int64),
            "country": country,
            "first": _pick(rng, f_off, f_len, country),
            "last": _pick(rng, l_off, l_len, country),
            "pattern": rng.integers(0, v.N_EMAIL_PATTERNS, n).astype(np.int8),
            "domain": _pick(rng, d_off, d_len, country),
            "old_pattern": rng.integers(0, v.N_EMAIL_PATTERNS, n).astype(np.int8),
            "old_domain": rng.integers(0, len(v.OLD_EMAIL_DOMAINS), n),
            "first_seen": first_seen,
            "span": span,
            "registered": registered,
            "signup": signup,
            "changer": changer,
            "change_at": change_at,
            "has_phone": rng.random(n) < 0.7,
            "phone_variant": rng.integers(0, 8, n).astype(np.int8),
            "n_dev": n_dev,
            "login": login,
            "ua": _choice(rng, v.USER_AGENT_WEIGHTS, n * 3).reshape(n, 3),
            "lib": rng.integers(0, len(v.LIBRARY_VERSIONS), (n, 3)).astype(np.int8),
            "ip": rng.integers(16_777_216, 3_741_319_167, (n, 3), dtype=np.int64),
            "anon_words": _words(rng, n * 3).reshape(n, 3, 2),
            "cart_words": _words(rng, n * 3).reshape(n, 3, 2),
            "kiosk": kiosk,
            "kiosk_at": _within(rng, first_seen, span),
            "web": web,
            "has_crm": has_crm,
            "crm2": has_crm & (rng.random(n) < 0.03),
            "buyer": buyer,
            "subscriber": subscriber,
            "sub_at": sub_at,
            "newsletter": ~registered & web & (rng.random(n) < 0.35),
            "street_no": rng.integers(1, 300, n),
            "street": _pick(rng, s_off, s_len, country),
            "city": _pick(rng, c_off, c_len, country),
            "postal": rng.integers(0, 10 * 26 * 26, n),
        }

    # -- helpers over persons ----------------------------------------------------------------------

    def email_kind_at(self, p: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Which of the person's addresses was in use at ``t`` (1 = the old one)."""
        return (t < self.P["change_at"][p]).astype(np.int8)

    def segment_rows(
        self,
        p: np.ndarray,
        t: np.ndarray,
        anon: np.ndarray,
        uid_on: np.ndarray,
        page: np.ndarray,
        *,
        server: np.ndarray | None = None,
        campaign: np.ndarray | None = None,
    ) -> Frame:
        """The common Segment columns: delivery delays, clock skew, page context, message id."""
        rng, m = self.rng, p.size
        # Most events arrive within seconds; mobile / offline batches arrive hours or days late.
        late = rng.random(m)
        send = np.where(
            late < 0.9,
            rng.integers(5_000, 3 * SECOND, m),
            np.where(late < 0.98, rng.integers(MINUTE, 6 * HOUR, m), rng.integers(DAY, 5 * DAY, m)),
        )
        skew = np.where(rng.random(m) < 0.05, rng.integers(-2 * HOUR, 2 * HOUR, m), 0)
        frame = {
            "p": p,
            "t": t,
            "anon": anon.astype(np.int8),
            **_uid(rng, uid_on, junk_when_off=0.01),
            "send": send,
            "skew": skew,
            "net": rng.integers(20_000, 400_000, m),
            "load": rng.integers(5 * MINUTE, 3 * HOUR, m),
            "page": page.astype(np.int16),
            "campaign": (campaign if campaign is not None else np.full(m, -1)).astype(np.int16),
            "referrer": _choice(rng, v.REFERRER_WEIGHTS, m),
            "server": server if server is not None else np.zeros(m, dtype=bool),
            "words": _words(rng, m),
            "dup": np.zeros(m, dtype=bool),
        }
        return frame

    def with_duplicates(self, frame: Frame, rate: float = 0.005) -> Frame:
        """The same message delivered twice: same id and content, loaded again later."""
        if not frame:
            return frame
        rng = self.rng
        idx = np.flatnonzero(rng.random(frame["p"].size) < rate)
        copy = take(frame, idx)
        copy["dup"] = np.ones(idx.size, dtype=bool)
        copy["net"] = copy["net"] + rng.integers(SECOND, 6 * HOUR, idx.size)
        copy["load"] = copy["load"] + rng.integers(HOUR, 2 * DAY, idx.size)
        return concat([frame, copy])

    # -- sources -----------------------------------------------------------------------------------

    def web_events(self) -> tuple[Frame, Frame]:
        """Browsing: pages and browsing track events on the person's devices."""
        rng, P = self.rng, self.P
        n = self.n
        n_ev = np.where(
            P["web"], 1 + np.minimum(rng.lognormal(np.log(8.5), 1.1, n).astype(np.int64), 3000), 0
        )
        p = np.repeat(np.arange(n), n_ev)
        m = p.size
        t = _within(rng, P["first_seen"][p], P["span"][p])
        dev = (rng.random(m) * P["n_dev"][p]).astype(np.int8)
        uid_on = (t >= P["login"][p, dev]) & (rng.random(m) < 0.93)
        is_page = rng.random(m) < 0.62
        page = _choice(rng, tuple(pg[3] for pg in v.PAGES), m)
        campaign = np.where(rng.random(m) < 0.12, rng.integers(0, len(v.CAMPAIGNS), m), -1)

        kp = np.flatnonzero(P["kiosk"] >= 0)
        k_n = rng.integers(1, 5, kp.size)
        kp_rows = np.repeat(kp, k_n)
        k_t = P["kiosk_at"][kp_rows] + rng.integers(0, 20 * MINUTE, kp_rows.size)
        k_uid = (k_t >= P["signup"][kp_rows]) & (rng.random(kp_rows.size) < 0.6)
        k_page = _choice(rng, tuple(pg[3] for pg in v.PAGES), kp_rows.size)

        pg = np.flatnonzero(is_page)
        pages = self.segment_rows(p[pg], t[pg], dev[pg], uid_on[pg], page[pg], campaign=campaign[pg])
        kiosk_pages = self.segment_rows(kp_rows, k_t, np.full(kp_rows.size, ANON_KIOSK), k_uid, k_page)
        pages = concat([pages, kiosk_pages])
        pages["search_term"] = rng.integers(0, len(v.PAGE_SEARCH_TERMS), pages["p"].size).astype(np.int8)

        tr = np.flatnonzero(~is_page)
        tracks = self.segment_rows(p[tr], t[tr], dev[tr], uid_on[tr], page[tr])
        k = tr.size
        etype = _choice(rng, v.BROWSE_EVENT_WEIGHTS, k).astype(np.int8)
        product = _choice(rng, v.PRODUCT_WEIGHTS, k)
        # Browsing events happen on a product page, the cart or search.
        tracks["page"] = np.select(
            [etype == v.EV_CART_VIEWED, etype == v.EV_CHECKOUT_STARTED, etype == v.EV_SEARCHED],
            [v.PAGE_CART, v.PAGE_CART, v.PAGE_SEARCH],
            product,
        ).astype(np.int16)
        qty = 1 + rng.poisson(0.25, k)
        price = np.array([pr[4] for pr in v.PRODUCTS])[product]
        currency = np.asarray(v.HOME_CURRENCY)[P["country"][p[tr]]]
        tracks.update(
            etype=etype,
            product=product,
            qty=qty.astype(np.int32),
            cart_dev=dev[tr],
            order=np.full(k, -1, np.int64),
            value=localise(price * qty, currency),
            revenue=np.zeros(k),
            currency=currency.astype(np.int8),
            **_no_email(k),
        )
        return pages, tracks

    def orders(self) -> tuple[Frame, Frame, Frame]:
        """Orders, their lines, and the checkout_started / order_completed events of web orders."""
        rng, P, cfg = self.rng, self.P, self.cfg
        n_ord = np.where(P["buyer"], np.minimum(rng.geometric(0.55, self.n), MAX_ORDERS), 0)
        p = np.repeat(np.arange(self.n), n_ord)
        m = p.size
        starts = np.concatenate([[0], np.cumsum(n_ord)[:-1]])
        k = np.arange(m) - np.repeat(starts, n_ord)
        t = _within(rng, P["first_seen"][p], P["span"][p])
        signed_in = (t >= P["signup"][p]) & (rng.random(m) < 0.9)
        country = P["country"][p]
        currency = np.asarray(v.HOME_CURRENCY)[country]
        currency = np.where(rng.random(m) < 0.04, rng.integers(0, len(v.CURRENCIES), m), currency)
        status = _choice(rng, v.ORDER_STATUS_WEIGHTS, m)
        # Pending orders are recent ones.
        status = np.where((status == v.ST_PENDING) & (t < cfg.end_us - 3 * DAY), v.ST_COMPLETED, status)

        n_lines = 1 + np.minimum(rng.poisson(0.9, m), 9)
        lo = np.repeat(np.arange(m), n_lines)
        line_starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
        line_no = np.arange(lo.size) - np.repeat(line_starts, n_lines) + 1
        product = _choice(rng, v.PRODUCT_WEIGHTS, lo.size)
        qty = (1 + rng.poisson(0.3, lo.size)).astype(np.int32)
        unit = localise(np.array([pr[4] for pr in v.PRODUCTS])[product], currency[lo])
        line_total = np.round(unit * qty, 2)
        subtotal = np.round(np.bincount(lo, weights=line_total, minlength=m), 2)
        tax = np.round(subtotal * np.asarray(v.TAX_RATE)[country], 2)
        shipping = np.where(subtotal >= 50, 0.0, 4.95)
        total = np.round(subtotal + tax + shipping, 2)
        refunded = np.select(
            [status == v.ST_REFUNDED, status == v.ST_PARTIAL],
            [total, np.round(total * rng.uniform(0.1, 0.6, m), 2)],
            0.0,
        )
        settle = np.where(
            np.isin(status, (v.ST_REFUNDED, v.ST_PARTIAL, v.ST_CANCELLED)),
            rng.integers(HOUR, 20 * DAY, m),
            rng.integers(MINUTE, 2 * HOUR, m),
        )
        updated = np.minimum(t + settle, cfg.end_us - 1)
        order_code = P["g"][p] * 100 + k
        orders: Frame = {
            "p": p,
            "order": order_code,
            "t": t,
            "updated": updated,
            **_uid(rng, signed_in, junk_when_off=0.0, junk_when_on=0.0),
            **_email(rng, self.email_kind_at(p, t), MESS_SHOP, 0.005),
            **_phone(rng, P["has_phone"][p] & (rng.random(m) < 0.5), 0.01),
            "status": status.astype(np.int8),
            "currency": currency.astype(np.int8),
            "subtotal": subtotal,
            "tax": tax,
            "shipping": shipping,
            "total": total,
            "refunded": refunded,
            "words": _words(rng, m),
        }
        lines: Frame = {
            "p": p[lo],
            "order": order_code[lo],
            "line_no": line_no,
            "product": product,
            "qty": qty,
            "unit": unit,
            "line_total": line_total,
        }

        # Web orders send Checkout Started then Order Completed; phone and in-store orders send nothing.
        web = np.flatnonzero(P["web"][p] & (rng.random(m) < 0.9))
        w = web.size
        pw = p[web]
        dev = (rng.random(w) * P["n_dev"][pw]).astype(np.int8)
        server = rng.random(w) < 0.2  # sent from the backend: no anonymous id, no browser context
        anon = np.where(server, -1, dev)
        uid_on = signed_in[web]
        t_done = t[web]
        t_checkout = t_done - rng.integers(MINUTE, 30 * MINUTE, w)
        done = self.segment_rows(pw, t_done, anon, uid_on, np.full(w, v.PAGE_CART), server=server)
        started = self.segment_rows(pw, t_checkout, dev, uid_on, np.full(w, v.PAGE_CART))
        common = {
            "product": np.zeros(w, np.int16),
            "qty": np.zeros(w, np.int32),
            "cart_dev": dev,
            "order": order_code[web],
            "value": total[web],
            "revenue": subtotal[web],
            "currency": currency[web].astype(np.int8),
        }
        done.update(
            etype=np.full(w, v.EV_ORDER_COMPLETED, np.int8),
            **common,
            **_email(rng, self.email_kind_at(pw, t_done), MESS_EVENTS, 0.005),
        )
        started.update(etype=np.full(w, v.EV_CHECKOUT_STARTED, np.int8), **common, **_no_email(w))
        return orders, lines, concat([started, done])

    def identifies(self) -> Frame:
        """Identify calls: sign-up, log-ins on other devices, email changes, newsletter forms, kiosks."""
        rng, P, cfg = self.rng, self.P, self.cfg
        idx = np.arange(self.n)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        reg = idx[P["registered"]]
        parts.append(
            (
                reg,
                P["signup"][reg],
                np.zeros(reg.size, np.int8),
                np.ones(reg.size, bool),
                np.full(reg.size, 0.97),
            )
        )
        for d in (1, 2):
            who = idx[P["login"][:, d] < cfg.end_us]
            parts.append((who, P["login"][who, d], np.full(who.size, d, np.int8), np.ones(who.size, bool), np.full(who.size, 0.6)))  # fmt: skip
        ch = idx[P["registered"] & P["changer"] & (P["change_at"] > P["signup"])]
        parts.append(
            (ch, P["change_at"][ch], np.zeros(ch.size, np.int8), np.ones(ch.size, bool), np.ones(ch.size))
        )
        # Some apps call identify again on later visits.
        extra = np.repeat(reg, rng.poisson(0.8, reg.size))
        ext_t = P["signup"][extra] + (rng.random(extra.size) * (P["first_seen"][extra] + P["span"][extra] - P["signup"][extra])).astype(np.int64)  # fmt: skip
        ext_dev = (rng.random(extra.size) * P["n_dev"][extra]).astype(np.int8)
        logged_in = ext_t >= P["login"][extra, ext_dev]
        extra, ext_t, ext_dev = extra[logged_in], ext_t[logged_in], ext_dev[logged_in]
        parts.append((extra, ext_t, ext_dev, np.ones(extra.size, bool), np.full(extra.size, 0.5)))
        nl = idx[P["newsletter"]]
        parts.append((nl, _within(rng, P["first_seen"][nl], P["span"][nl]), np.zeros(nl.size, np.int8), np.zeros(nl.size, bool), np.ones(nl.size)))  # fmt: skip
        # Kiosk sign-ins: the shared device is identified as many different people.
        ki = idx[(P["kiosk"] >= 0) & (rng.random(self.n) < 0.75)]
        k_t = P["kiosk_at"][ki] + rng.integers(0, 10 * MINUTE, ki.size)
        parts.append((ki, k_t, np.full(ki.size, ANON_KIOSK, np.int8), k_t >= P["signup"][ki], np.full(ki.size, 0.9)))  # fmt: skip

        p = np.concatenate([x[0] for x in parts])
        t = np.concatenate([x[1] for x in parts])
        anon = np.concatenate([x[2] for x in parts])
        uid_on = np.concatenate([x[3] for x in parts])
        email_rate = np.concatenate([x[4] for x in parts])
        m = p.size
        page = np.where(uid_on, v.PAGE_ACCOUNT, v.PAGE_HOME)
        frame = self.segment_rows(p, t, anon, uid_on, page)
        kind = np.where(rng.random(m) < email_rate, self.email_kind_at(p, t), -1)
        frame.update(
            **_email(rng, kind, MESS_EVENTS, 0.01),
            **_phone(rng, P["has_phone"][p] & (rng.random(m) < 0.35), 0.015),
            names=rng.random(m) < 0.9,
            address=rng.random(m) < 0.3,
        )
        return frame

    def users(self, identifies: Frame) -> Frame:
        """One row per user id: the traits of its latest identify call."""
        rng, P = self.rng, self.P
        reg = np.flatnonzero(P["registered"])
        latest = P["signup"].copy()
        has_uid = identifies["uid_on"] & ~identifies["dup"]
        np.maximum.at(latest, identifies["p"][has_uid], identifies["t"][has_uid])
        received = latest[reg] + rng.integers(SECOND, 5 * SECOND, reg.size)
        return {
            "p": reg,
            "t": received,
            "created": P["signup"][reg],
            "load": rng.integers(5 * MINUTE, 3 * HOUR, reg.size),
            **_email(rng, self.email_kind_at(reg, latest[reg]), (1.0, 0, 0, 0, 0), 0.0),
            **_phone(rng, P["has_phone"][reg] & (rng.random(reg.size) < 0.5), 0.0),
        }

    def contacts(self) -> Frame:
        """CRM contacts; a few persons were entered twice."""
        rng, P, cfg = self.rng, self.P, self.cfg
        idx = np.arange(self.n)
        p = np.concatenate([idx[P["has_crm"]], idx[P["crm2"]]])
        second = np.concatenate([np.zeros(P["has_crm"].sum(), bool), np.ones(P["crm2"].sum(), bool)])
        m = p.size
        created = _within(rng, P["first_seen"][p], P["span"][p])
        updated = np.minimum(created + (rng.exponential(1.0, m) * 30 * DAY).astype(np.int64), cfg.end_us - 1)
        # A CRM keeps whatever address it was given until someone edits the contact.
        kind = np.where(rng.random(m) < 0.5, self.email_kind_at(p, created), self.email_kind_at(p, updated))
        kind = np.where(second & (rng.random(m) < 0.3), -1, kind)
        synced = (created >= P["signup"][p]) & (rng.random(m) < 0.45)
        stage = np.where(P["buyer"][p], np.where(rng.random(m) < 0.1, 5, 4), _choice(rng, v.NON_CUSTOMER_STAGE_WEIGHTS, m))  # fmt: skip
        uid = _uid(rng, synced, junk_when_off=0.0, junk_when_on=0.0)
        uid["uid_ws"] = synced & (rng.random(m) < 0.02)
        return {
            "p": p,
            "second": second,
            "created": created,
            "updated": updated,
            **_email(rng, kind, MESS_CRM, 0.01),
            **_phone(rng, P["has_phone"][p] & (rng.random(m) < 0.65), 0.02),
            **uid,
            "company": np.where(rng.random(m) < 0.55, rng.integers(0, len(v.COMPANIES), m), -1),
            "job": np.where(rng.random(m) < 0.5, rng.integers(0, len(v.JOB_TITLES), m), -1),
            "stage": stage.astype(np.int8),
            "upper_last": rng.random(m) < 0.05,
            "deleted": rng.random(m) < 0.02,
        }

    def email_events(self) -> tuple[Frame, np.ndarray, np.ndarray]:
        """Campaign sends every 14 days to a share of subscribers, with a realistic funnel.

        Returns the frame and the (person, time) of unsubscribes, which also revoke consent."""
        rng, P, cfg = self.rng, self.P, self.cfg
        c_times = campaign_times(cfg)
        nc = c_times.size
        subs = np.flatnonzero(P["subscriber"])
        first_c = np.searchsorted(c_times, P["sub_at"][subs])
        avail = nc - first_c
        count = rng.binomial(avail, 0.25)
        p = np.repeat(subs, count)
        campaign = np.repeat(first_c, count) + (rng.random(p.size) * np.repeat(avail, count)).astype(np.int64)
        sent = c_times[np.minimum(campaign, max(nc - 1, 0))] + rng.integers(0, 2 * HOUR, p.size)
        ok = sent < cfg.end_us
        p, campaign, sent = p[ok], campaign[ok], sent[ok]
        s = p.size
        bounce = rng.random(s) < 0.03
        delivered = ~bounce
        opened = delivered & (rng.random(s) < 0.3)
        clicked = opened & (rng.random(s) < 0.15)
        unsub = delivered & (rng.random(s) < 0.004)
        spam = delivered & ~unsub & (rng.random(s) < 0.0006)
        t_open = sent + (rng.exponential(1.0, s) * 8 * HOUR).astype(np.int64)
        t_click = t_open + rng.integers(5 * SECOND, 10 * MINUTE, s)
        t_unsub = t_open + rng.integers(10 * SECOND, 5 * MINUTE, s)
        kind_at_send = self.email_kind_at(p, sent)
        rows = [
            (np.ones(s, bool), v.ESP_SENT, sent),
            (delivered, v.ESP_DELIVERED, sent + rng.integers(SECOND, MINUTE, s)),
            (bounce, v.ESP_BOUNCE, sent + rng.integers(SECOND, MINUTE, s)),
            (opened, v.ESP_OPEN, t_open),
            (clicked, v.ESP_CLICK, t_click),
            (unsub, v.ESP_UNSUBSCRIBE, t_unsub),
            (spam, v.ESP_SPAM, t_open + MINUTE),
        ]
        sel = [np.flatnonzero(mask) for mask, _, _ in rows]
        frame_p = np.concatenate([p[i] for i in sel])
        e = frame_p.size
        frame = {
            "p": frame_p,
            "etype": np.concatenate(
                [np.full(i.size, et, np.int8) for i, (_, et, _) in zip(sel, rows, strict=True)]
            ),
            "campaign": np.concatenate([campaign[i] for i in sel]),
            "t": np.concatenate([tt[i] for i, (_, _, tt) in zip(sel, rows, strict=True)]),
            **_email(rng, np.concatenate([kind_at_send[i] for i in sel]), MESS_ESP, 0.0),
            "url": rng.integers(0, len(v.CLICK_URLS), e).astype(np.int8),
            "words": _words(rng, e),
        }
        keep = frame["t"] < cfg.end_us
        frame = take(frame, np.flatnonzero(keep))
        u = np.flatnonzero(unsub & (t_unsub < cfg.end_us))
        return frame, p[u], t_unsub[u]

    def consents(self, unsub_p: np.ndarray, unsub_t: np.ndarray) -> Frame:
        """Consent changes: cookie banners per device, email and SMS opt-ins, preference-centre edits."""
        rng, P, cfg = self.rng, self.P, self.cfg
        idx = np.arange(self.n)
        rows: list[Frame] = []

        def add(p: np.ndarray, t: np.ndarray, id_type: int, purpose: np.ndarray | int, status: np.ndarray | int,
                source: np.ndarray | int, **extra: np.ndarray) -> None:  # fmt: skip
            m = p.size
            frame = {
                "p": p,
                "t": t,
                "id_type": np.full(m, id_type, np.int8),
                "purpose": np.broadcast_to(np.asarray(purpose, np.int8), (m,)).copy(),
                "status": np.broadcast_to(np.asarray(status, np.int8), (m,)).copy(),
                "source": np.broadcast_to(np.asarray(source, np.int8), (m,)).copy(),
                "anon": extra.get("anon", np.full(m, -1, np.int8)),
                "uid_on": np.full(m, id_type == v.CID_USER_ID),
                "uid_junk": np.full(m, -1, np.int8),
                "uid_ws": np.zeros(m, bool),
                **_email(rng, extra.get("email_kind", np.full(m, -1, np.int8)), MESS_EVENTS, 0.0),
                **_phone(rng, np.full(m, id_type == v.CID_PHONE), 0.0),
            }
            rows.append(frame)

        # Cookie banner on the first visit of the first device: one decision per purpose.
        banner = idx[P["web"] & (rng.random(self.n) < 0.85)]
        b = banner.size
        t_b = P["first_seen"][banner] + rng.integers(2 * SECOND, MINUTE, b)
        analytics = np.where(rng.random(b) < 0.75, 0, 1)
        ads = np.where(rng.random(b) < 0.55, 0, 1)
        dev0 = np.zeros(b, np.int8)
        add(banner, t_b, v.CID_ANON, v.P_ANALYTICS, analytics, v.SRC_BANNER, anon=dev0)
        add(banner, t_b, v.CID_ANON, v.P_ADS, ads, v.SRC_BANNER, anon=dev0)
        add(banner, t_b, v.CID_ANON, v.P_AD_DATA, np.where(rng.random(b) < 0.95, ads, 1 - ads), v.SRC_BANNER, anon=dev0)  # fmt: skip
        # A later change of mind on the same device.
        flip = np.flatnonzero(rng.random(b) < 0.08)
        t_f = _within(rng, t_b[flip], P["span"][banner[flip]])
        add(banner[flip], t_f, v.CID_ANON, v.P_ADS, 1 - ads[flip], v.SRC_BANNER, anon=dev0[flip])

        # Email marketing opt-in when subscribing; opt-out on unsubscribe.
        subs = idx[P["subscriber"]]
        src = np.where(P["has_crm"][subs] & (rng.random(subs.size) < 0.3), v.SRC_CRM,
                       np.where(P["buyer"][subs], v.SRC_CHECKOUT, v.SRC_PREFS))  # fmt: skip
        add(subs, P["sub_at"][subs], v.CID_EMAIL, v.P_EMAIL, 0, src,
            email_kind=self.email_kind_at(subs, P["sub_at"][subs]))  # fmt: skip
        add(unsub_p, unsub_t, v.CID_EMAIL, v.P_EMAIL, 1, v.SRC_PREFS, email_kind=self.email_kind_at(unsub_p, unsub_t))  # fmt: skip

        # SMS opt-in at checkout, some later revoked.
        sms = idx[P["has_phone"] & P["buyer"] & (rng.random(self.n) < 0.25)]
        t_s = _within(rng, P["first_seen"][sms], P["span"][sms])
        add(sms, t_s, v.CID_PHONE, v.P_SMS, 0, v.SRC_CHECKOUT)
        rev = np.flatnonzero(rng.random(sms.size) < 0.2)
        t_r = np.minimum(
            t_s[rev] + (rng.exponential(1.0, rev.size) * 30 * DAY).astype(np.int64), cfg.end_us - 1
        )
        add(sms[rev], t_r, v.CID_PHONE, v.P_SMS, 1, v.SRC_PREFS)

        # Signed-in preference-centre edits, keyed by user id.
        pc = idx[P["registered"] & (rng.random(self.n) < 0.2)]
        t_pc = P["signup"][pc] + (rng.random(pc.size) * (P["first_seen"][pc] + P["span"][pc] - P["signup"][pc])).astype(np.int64)  # fmt: skip
        purpose = np.where(rng.random(pc.size) < 0.5, v.P_ADS, v.P_AD_DATA)
        add(pc, t_pc, v.CID_USER_ID, purpose, np.where(rng.random(pc.size) < 0.6, 1, 0), v.SRC_PREFS)

        frame = concat(rows)
        frame["words"] = _words(rng, frame["p"].size)
        return frame

    def run(self) -> dict[str, Frame]:
        self.P = self.persons()
        pages, browse = self.web_events()
        orders, lines, order_events = self.orders()
        identifies = self.identifies()
        tracks = concat([browse, order_events])
        users = self.users(identifies)
        contacts = self.contacts()
        esp, unsub_p, unsub_t = self.email_events()
        consent = self.consents(unsub_p, unsub_t)
        frames = {
            "persons": self.P,
            "pages": self.with_duplicates(pages),
            "tracks": self.with_duplicates(tracks),
            "identifies": self.with_duplicates(identifies),
            "users": users,
            "contacts": contacts,
            "orders": orders,
            "lines": lines,
            "esp": esp,
            "consent": consent,
        }
        # Row person indices are local to the block so far: make them global.
        for name, frame in frames.items():
            if name != "persons" and frame:
                frame["p"] = frame["p"] + self.g0
        self._mark_used(frames)
        return frames

    def _mark_used(self, frames: dict[str, Frame]) -> None:
        """Record which identifiers of each person actually reach the raw data (ground truth)."""
        P, n, g0 = self.P, self.n, self.g0
        email = np.zeros((n, 2), bool)
        phone = np.zeros(n, bool)
        uid = np.zeros(n, bool)
        anon = np.zeros((n, 4), bool)
        for name, frame in frames.items():
            if name in ("persons", "lines") or not frame:
                continue
            p = frame["p"] - g0
            if "email_kind" in frame:
                ok = (frame["email_kind"] >= 0) & (frame["email_junk"] < 0)
                email[p[ok], frame["email_kind"][ok]] = True
            if "phone_on" in frame:
                ok = frame["phone_on"] & (frame["phone_junk"] < 0)
                phone[p[ok]] = True
            if "uid_on" in frame:
                ok = frame["uid_on"] & (frame["uid_junk"] < 0)
                uid[p[ok]] = True
            if "anon" in frame:
                ok = frame["anon"] >= 0
                anon[p[ok], frame["anon"][ok]] = True
        # Users rows are keyed by the user id itself.
        uid[frames["users"]["p"] - g0] = True
        P["used_email"] = email
        P["used_phone"] = phone & P["has_phone"]
        P["used_uid"] = uid & P["registered"]
        P["used_anon"] = anon


def campaign_times(cfg: Config) -> np.ndarray:
    """Email campaigns go out every 14 days at 09:00, starting on the third day."""
    first = cfg.start_us + 2 * DAY + 9 * HOUR
    return np.arange(first, cfg.end_us, 14 * DAY, dtype=np.int64)


def localise(usd: np.ndarray, currency: np.ndarray) -> np.ndarray:
    """A USD price in the order currency, rounded to a shop-like .99."""
    local = usd * np.asarray(v.FX_FROM_USD)[currency]
    return np.round(np.maximum(np.ceil(local) - 0.01, 0.99), 2)
