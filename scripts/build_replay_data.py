r"""Build the compact replay data set that ships inside the package.

Reads the offline data pack (``../shared/data`` next to the repository, or ``--shared``) and
writes ``intel/data/replay/``:

* ``candles/{BTC,ETH,SOL,BNB,XRP}USDT_1h.csv.gz`` - Binance spot hourly candles, source text kept;
* ``fear_greed.csv`` - Alternative.me Fear & Greed, daily;
* ``whales/{BTC,ETH}_exchange_flows_1h.csv`` + ``coverage.json`` - hourly exchange in/outflow
  aggregates of Whale Alert's public Telegram channel;
* ``orderbook/*.tsv.gz`` + ``venues.json`` - order-book snapshots, one ``<ms>\t<json>`` line each,
  sorted so a reader can bisect on the leading integer;
* ``reddit/posts.csv.gz`` - a small sample of Reddit posts with usernames removed;
* ``SOURCES.md`` - origin, licence, rows, range and changes of every shipped file.

Only the standard library is used. Gzip output is deterministic (mtime 0, no file name), so
re-running on the same input gives byte-identical files. Run from anywhere::

    .venv/bin/python scripts/build_replay_data.py [--shared PATH] [--out PATH]
"""

import argparse
import csv
import gzip
import html
import io
import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "intel" / "data" / "replay"

HOUR_MS = 3_600_000
DAY_S = 86_400
SIZE_BUDGET_BYTES = 12 * 1024 * 1024
EXCERPT_CHARS = 280
REMOVED = "u/[removed]"

CANDLE_HEADER = ["open_time_ms", "open", "high", "low", "close", "volume"]
FNG_HEADER = ["timestamp", "value", "classification"]
WHALE_HEADER = [
    "hour_start_ms",
    "inflow_usd",
    "outflow_usd",
    "inflow_coins",
    "outflow_coins",
    "transfer_count",
]
REDDIT_HEADER = ["post_id", "subreddit", "created_utc_s", "title", "excerpt"]

# --- provenance, copied from the SOURCES.md files of the shared data pack -------------------------

OHLCV_MAIN_ORIGIN = (
    "djienne/3EMA_SRSI_ATR `user_data/data/binance/{BTC,ETH}_USDT-1h.json` @ "
    "b7dc49092ffa7d56467418478c86360409f3489a (to 2022-10-11 10:00; no licence file), then "
    "bernini10/oraculo-de-bitcoin `user_data/data/binance/{BTC,ETH}_USDT-1h.feather` @ "
    "fc67c5e6fd7e823b93918ac5792848a8d042ccb2 (MIT)"
)
OHLCV_CONT_ORIGIN = {
    "BTC": (
        "dangdoday/SE2025-9.4 `user_data/data/binance/BTC_USDT-1h.feather` @ "
        "5031484ced1ceb7e992c0c27ee607b97657774c7 (to 2025-12-01 07:00), then Harthor/marketlab "
        "`user_data/data/binance/BTC_USDT-1h.feather` @ 6135a753162dd7dfe1c4d7fd282c1c8b65c5bede "
        "(to 2026-02-19 03:00), then ThatspatuLa/BtcH1Autorl "
        "`user_data/data/binance/BTC_USDT-1h.feather` @ a34974a01d6886621228d387debaac161b8b6461; "
        "all three: no licence file"
    ),
    "ETH": (
        "dangdoday/SE2025-9.4 `user_data/data/binance/ETH_USDT-1h.feather` @ "
        "5031484ced1ceb7e992c0c27ee607b97657774c7, then Harthor/marketlab "
        "`user_data/data/binance/ETH_USDT-1h.feather` @ 6135a753162dd7dfe1c4d7fd282c1c8b65c5bede; "
        "both: no licence file"
    ),
}
OHLCV_ALT_ORIGIN = (
    "bernini10/oraculo-de-bitcoin `user_data/data/binance/{SYM}_USDT-1h.feather` @ "
    "fc67c5e6fd7e823b93918ac5792848a8d042ccb2"
)
FNG_ORIGIN = (
    "edwardchin811227/cryptofear-and-greed-index `data/fng.csv` @ "
    "123cbc8394f5240a88334fc24df82fd80f706795 "
    "(a daily job pulling `api.alternative.me/fng/?limit=0`)"
)
WHALE_ORIGIN = (
    "C3lineTan/DSE4101-CryptoWhale-2 `Data/whale_alert_{sym}.csv` @ "
    "4f9023b3c37154ff6f271ac02dd660f426e17d34, plus the raw `whale_txn_count` from "
    "ebbff57be41bc804736136d180a738b1b0981980; log1p columns inverted with expm1 by the data pack"
)
HFT_ORIGIN = (
    "nkaz001/hftbacktest `examples/spot/{sym}_20240808.gz` + `{sym}_20240809.gz` @ "
    "c4183c646c744222812405fb3618a39ab75a4a8d (raw Binance REST depth snapshot + `depth@100ms` "
    "diff stream), rebuilt by the data pack into one top-20 snapshot per second (0 sequence gaps; "
    "top of book equals Binance `bookTicker` in 650/650 snapshots)"
)
KRAKEN_ORIGIN = (
    "Tempest-Zero/trading-indicator `agg_snapshot.csv`, 2,419 bot commits "
    "4e2d36e6d524ecc584bd8e516278b6d9ec8d54a8 (2025-09-16T01:20:39Z) → "
    "e0b3c48b4e9213b84d575fd354bd83ef5decac54 (2025-10-12T23:56:11Z); Kraken REST "
    "`/0/public/Depth?pair=ETHUSD&count=500`, summed into 1 USD buckets, qty rounded to 0.01 ETH "
    "(the file labels it `ETHUSDT`, but it is Kraken ETH/USD)"
)
REDDIT_ORIGINS = [
    "ranimkhedhiri/Thesis `bitcoin_posts.csv` @ ffbd499f61fc3bf848bfae11b1312e28e12dd3c0 "
    "(r/Bitcoin, 2024; no licence file)",
    "abinghamwalker/reddit_crypto `data/raw/raw_reddit_data_aggressive-praw_limit5000.parquet` @ "
    "e85226349e46cdde18c213729bdd79fb2c2ce77a "
    "(PRAW, BTC/ETH keyword-filtered, 2025; no licence file)",
    "zakariaeyahya/Crypto_Analysis `output/posts/crypto_posts_*.csv` @ "
    "ce8561041f9395e73cd8e004ca16a4f9e4c25078 (PRAW, 2025-09-29 → 11-01; MIT)",
]

REDDIT_CHANGES = (
    "Dropped author/author_hash, score, upvote_ratio, num_comments (recorded days after posting) "
    "and every other column. Title and excerpt: HTML entities unescaped, whitespace collapsed; "
    "`u/name`, `/u/name`, reddit.com/user/name links, X/Twitter (and other social) profile or "
    "status links and `@name` handles replaced by `u/[removed]`; e-mail addresses replaced by "
    "`[email removed]`. Excerpt = selftext cut to ≤280 characters on a word boundary "
    "with `…` (empty when there is no selftext). Posts with an empty, [deleted] or [removed] "
    "title dropped. Subreddit names kept as in the sources (letter case varies)"
)

REDDIT_FILES = [
    ("reddit_r_bitcoin_posts_2024-09-03_to_2024-10-07.csv.gz", "2024-09-19"),
    ("reddit_crypto_posts_keyword_filtered_2025-06-05_to_2025-09-26.csv.gz", "2025-09-16"),
    ("reddit_crypto_posts_2025-09-29_to_2025-11-01.csv.gz", "2025-09-16"),
]


@dataclass
class Built:
    """What was written for one shipped file, for the summary and SOURCES.md."""

    path: Path
    rows: int
    start: str
    end: str
    origin: str
    licence: str
    changes: str
    attribution: str = ""
    extra: dict[str, object] = field(default_factory=dict)


# --- small I/O helpers -------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """Format epoch milliseconds as an ISO-8601 UTC string (seconds precision)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_s(text: str) -> int:
    """Parse an ISO-8601 time (``Z``, offset or naive = UTC) into epoch seconds."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Read a (possibly gzipped) UTF-8 CSV into its header and rows of strings."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def read_jsonl_gz(path: Path) -> Iterator[dict[str, object]]:
    """Yield JSON records with numbers kept as their exact source text (strings)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line, parse_float=str, parse_int=str)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Render rows as CSV text with newline line endings."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_bytes(path: Path, data: bytes) -> None:
    """Write bytes, gzip-compressing deterministically when the name ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with path.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text (gzipped when the name ends in ``.gz``)."""
    write_bytes(path, text.encode("utf-8"))


def check_increasing(values: Sequence[int], what: str, step: int | None = None) -> None:
    """Fail unless ``values`` strictly increase (and are multiples of ``step`` if given)."""
    for prev, cur in itertools.pairwise(values):
        if cur <= prev:
            raise ValueError(f"{what}: not strictly increasing at {prev} -> {cur}")
    if step and any(v % step for v in values):
        raise ValueError(f"{what}: timestamp not aligned to {step}")


# --- candles -----------------------------------------------------------------------------------


def load_candles(path: Path) -> list[list[str]]:
    """Load a shared candle file as ``[open_time_ms, open, high, low, close, volume]`` text."""
    header, rows = read_csv(path)
    if header != ["timestamp", "datetime", "open", "high", "low", "close", "volume"]:
        raise ValueError(f"{path.name}: unexpected header {header}")
    out = []
    for row in rows:
        if parse_iso_s(row[1]) * 1000 != int(row[0]):
            raise ValueError(f"{path.name}: datetime {row[1]} != timestamp {row[0]}")
        out.append([row[0], *row[2:]])
    return out


def build_candles(shared: Path, out: Path) -> list[Built]:
    """Write the five hourly candle files; BTC/ETH get their 2025-09-19+ continuation."""
    ohlcv = shared / "ohlcv"
    built = []
    for base in ("BTC", "ETH", "SOL", "BNB", "XRP"):
        rows = load_candles(ohlcv / f"binance_spot_{base}USDT_1h.csv.gz")
        origin = OHLCV_MAIN_ORIGIN if base in ("BTC", "ETH") else OHLCV_ALT_ORIGIN.format(SYM=base)
        licence = "MIT (bernini10); djienne: no licence file" if base in ("BTC", "ETH") else "MIT"
        changes = "dropped the `datetime` column; values are the source text unchanged"
        conts = sorted(ohlcv.glob(f"binance_spot_{base}USDT_1h_2025-09-19_to_*.csv.gz"))
        if base in ("BTC", "ETH"):
            if len(conts) != 1:
                raise ValueError(f"{base}: expected one continuation file, found {conts}")
            extra = load_candles(conts[0])
            if int(extra[0][0]) != int(rows[-1][0]) + HOUR_MS:
                raise ValueError(f"{base}: continuation is not contiguous with the main file")
            rows += extra
            origin += "; continued from 2025-09-19 23:00 by " + OHLCV_CONT_ORIGIN[base]
            licence += "; continuation: no licence file"
            changes = f"concatenated with `{conts[0].name}`; " + changes
        times = [int(r[0]) for r in rows]
        check_increasing(times, f"{base} candles", HOUR_MS)
        path = out / "candles" / f"{base}USDT_1h.csv.gz"
        write_text(path, csv_text(CANDLE_HEADER, rows))
        built.append(
            Built(
                path,
                len(rows),
                iso_ms(times[0]),
                iso_ms(times[-1]),
                origin,
                licence + " (Binance public market data)",
                changes,
                "Binance spot klines (`/api/v3/klines`) via freqtrade downloads",
            )
        )
    return built


# --- Fear & Greed ------------------------------------------------------------------------------


def build_fear_greed(shared: Path, out: Path) -> Built:
    """Write the daily Fear & Greed index with integer values."""
    src = shared / "fear_greed" / "alternative_me_fng_daily_2018-02-01_2026-08-22.csv"
    header, rows = read_csv(src)
    if header != ["date", "timestamp", "value", "classification"]:
        raise ValueError(f"fear & greed: unexpected header {header}")
    out_rows: list[tuple[int, int, str]] = []
    for date, ts, value, label in rows:
        stamp = int(ts)
        if stamp % DAY_S or datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%d") != date:
            raise ValueError(f"fear & greed: timestamp {ts} is not 00:00 UTC of {date}")
        number = float(value)
        if not number.is_integer():
            raise ValueError(f"fear & greed: non-integer value {value} on {date}")
        out_rows.append((stamp, int(number), label))
    check_increasing([r[0] for r in out_rows], "fear & greed", DAY_S)
    path = out / "fear_greed.csv"
    write_text(path, csv_text(FNG_HEADER, out_rows))
    return Built(
        path,
        len(out_rows),
        rows[0][0],
        rows[-1][0],
        FNG_ORIGIN,
        "no licence file; the data belongs to Alternative.me",
        "dropped the `date` column; value written as an integer (source floats are all whole); "
        "the historic labels are kept as published. 4 days are missing in the source "
        "(2018-04-14..16, 2024-10-26)",
        "Crypto Fear & Greed Index by Alternative.me (https://alternative.me/crypto/fear-and-greed-index/)",
    )


# --- whale flows -------------------------------------------------------------------------------


def fmt_coins(text: str) -> str:
    """Round a coin amount to 4 decimals, without trailing zeros."""
    return f"{float(text):.4f}".rstrip("0").rstrip(".")


def whale_row(row: dict[str, str]) -> tuple[int, int, int, str, str, int]:
    """Convert one source row to the shipped whale-flow columns."""
    suspect = row["coins_suspect"].strip().lower() == "true"
    count = float(row["whale_txn_count"])
    if not count.is_integer() or count < 1:
        raise ValueError(f"whales: bad transfer count {row['whale_txn_count']}")
    return (
        parse_iso_s(row["hour_utc"]) * 1000,
        round(float(row["exch_inflow_usd"])),
        round(float(row["exch_outflow_usd"])),
        "" if suspect else fmt_coins(row["exch_inflow_coins"]),
        "" if suspect else fmt_coins(row["exch_outflow_coins"]),
        int(count),
    )


def build_whales(shared: Path, out: Path) -> list[Built]:
    """Write hourly BTC/ETH exchange-flow aggregates and their coverage window."""
    built: list[Built] = []
    coverage: dict[str, dict[str, int]] = {}
    for sym in ("BTC", "ETH"):
        (src,) = (shared / "whales").glob(
            f"whale_alert_telegram_hourly_exchange_flows_{sym.lower()}_*.csv"
        )
        with src.open(encoding="utf-8", newline="") as fh:
            source_rows = list(csv.DictReader(fh))
        rows = [whale_row(r) for r in source_rows]
        times = [r[0] for r in rows]
        check_increasing(times, f"{sym} whale flows", HOUR_MS)
        suspect = sum(r[3] == "" for r in rows)
        coverage[sym] = {"start_ms": times[0], "end_ms": times[-1] + HOUR_MS}
        path = out / "whales" / f"{sym}_exchange_flows_1h.csv"
        write_text(path, csv_text(WHALE_HEADER, rows))
        built.append(
            Built(
                path,
                len(rows),
                iso_ms(times[0]),
                iso_ms(times[-1]),
                WHALE_ORIGIN.format(sym=sym.lower()) + f"; shared file `{src.name}`",
                "no licence file in the source repo; numeric aggregates only, "
                "no Whale Alert post text",
                "kept only hour, exchange inflow (wallet→exchange) / outflow (exchange→wallet) "
                "in USD (rounded to whole dollars) and coins (4 decimals), and the transfer count; "
                "dropped the source's net/rolling/burst columns. Only hours with ≥1 exchange "
                "transfer exist (a missing hour inside the coverage window means none). "
                f"Coin columns left empty on {suspect} row(s) flagged coins_suspect",
                "Aggregated from Whale Alert's public Telegram channel (whale-alert.io)",
            )
        )
    cov_path = out / "whales" / "coverage.json"
    write_text(cov_path, json.dumps(coverage, indent=2) + "\n")
    built.append(
        Built(
            cov_path,
            len(coverage),
            "",
            "",
            "derived from the two flow files above",
            "-",
            "start_ms = first recorded hour, end_ms = end of the last recorded hour",
        )
    )
    return built


# --- order books -------------------------------------------------------------------------------


def levels_json(levels: object) -> str:
    """Serialise ``[[price, qty], ...]`` (numbers held as source text) as compact JSON."""
    if not isinstance(levels, list):
        raise ValueError("order book side is not a list")
    return "[" + ",".join(f"[{p},{q}]" for p, q in levels) + "]"


def book_line(record: dict[str, object]) -> tuple[int, str]:
    """Return ``(timestamp_ms, tsv line)`` for one ccxt-style order-book record."""
    ts = int(str(record["timestamp"]))
    body = '{"bids":' + levels_json(record["bids"]) + ',"asks":' + levels_json(record["asks"]) + "}"
    parsed = json.loads(body)
    bids, asks = parsed["bids"], parsed["asks"]
    if bids and asks and bids[0][0] >= asks[0][0]:
        raise ValueError(f"crossed book at {ts}")
    return ts, f"{ts}\t{body}\n"


def build_book(src: Path, path: Path) -> tuple[int, int, int]:
    """Convert one JSONL.gz book file to sorted TSV.gz; return (count, start_ms, end_ms)."""
    lines = sorted((book_line(rec) for rec in read_jsonl_gz(src)), key=lambda item: item[0])
    times = [ts for ts, _ in lines]
    check_increasing(times, path.name)
    write_text(path, "".join(line for _, line in lines))
    return len(lines), times[0], times[-1]


BOOKS: list[dict[str, str]] = [
    {
        "src": "binance_spot_btcusdt_top20_1s_20240808T2354_0005.jsonl.gz",
        "file": "binance_BTCUSDT_top20_1s.tsv.gz",
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "for_symbol": "BTC/USDT",
        "note": "Binance spot BTC/USDT top-20 levels, one snapshot per second",
        "hft": "btcusdt",
    },
    {
        "src": "binance_spot_ethusdt_top20_1s_20240808T2354_0005.jsonl.gz",
        "file": "binance_ETHUSDT_top20_1s.tsv.gz",
        "exchange": "binance",
        "symbol": "ETH/USDT",
        "for_symbol": "ETH/USDT",
        "note": "Binance spot ETH/USDT top-20 levels, one snapshot per second",
        "hft": "ethusdt",
    },
    {
        "src": "kraken_ethusd_bucket1usd_500lvl_20250916_20251012_edges.jsonl.gz",
        "file": "kraken_ETHUSD_1usd.tsv.gz",
        "exchange": "kraken",
        "symbol": "ETH/USD",
        "for_symbol": "ETH/USDT",
        "note": "Kraken ETH/USD book in 1-USD buckets, about every 11 min "
        "(another venue and quote currency)",
        "detail": "500 raw levels per side; bids at the bucket's lower edge, asks at its upper "
        "edge, so the 1 USD minimum spread is an artefact",
        "hft": "",
    },
]


def build_orderbooks(shared: Path, out: Path) -> list[Built]:
    """Write the three order-book TSV files and ``venues.json``."""
    built: list[Built] = []
    venues: list[dict[str, object]] = []
    for spec in BOOKS:
        path = out / "orderbook" / spec["file"]
        count, start, end = build_book(shared / "orderbook" / spec["src"], path)
        venue: dict[str, object] = {
            k: spec[k] for k in ("file", "exchange", "symbol", "for_symbol")
        }
        venue |= {"start_ms": start, "end_ms": end, "count": count, "note": spec["note"]}
        if "detail" in spec:
            venue["detail"] = spec["detail"]
        if spec["hft"]:
            origin = HFT_ORIGIN.format(sym=spec["hft"])
            licence = "MIT (hftbacktest)"
            attribution = "Derived from hftbacktest raw recordings (nkaz001/hftbacktest, MIT)"
        else:
            origin = KRAKEN_ORIGIN
            licence = (
                "no licence file in the source repo (the data pack's SOURCES.md says treat it as "
                "'all rights reserved' for redistribution; its README lists the Kraken books as "
                "shippable with attribution to Kraken)"
            )
            attribution = "Kraken public market data (https://www.kraken.com)"
        venue["attribution"] = attribution
        venues.append(venue)
        built.append(
            Built(
                path,
                count,
                iso_ms(start),
                iso_ms(end),
                origin + f"; shared file `{spec['src']}`",
                licence,
                'one line per snapshot `<timestamp_ms>\\t{"bids":[[p,q],...],"asks":[...]}`, '
                "sorted by timestamp; prices/quantities are the source's number text; dropped "
                "symbol/datetime/nonce/info",
                attribution,
            )
        )
    venues_path = out / "orderbook" / "venues.json"
    write_text(venues_path, json.dumps(venues, indent=2, ensure_ascii=False) + "\n")
    built.append(
        Built(
            venues_path,
            len(venues),
            "",
            "",
            "describes the files above",
            "-",
            "one entry per order-book file",
        )
    )
    return built


# --- Reddit ------------------------------------------------------------------------------------

_NAME = r"(?:\\_|[\w-])+"
_REDDIT_USER_URL = re.compile(
    rf"(?:https?://)?(?:[\w-]+\.)?reddit\.com/(?:u|user)/{_NAME}", re.IGNORECASE
)
_SOCIAL_PROFILE_URL = re.compile(
    r"(?:https?://)?(?:www\.|mobile\.|m\.)?"
    r"(?:x\.com|twitter\.com|instagram\.com|facebook\.com|tiktok\.com|threads\.net|t\.me)/"
    rf"(?!(?:i|search|hashtag|home|explore)\b)@?{_NAME}(?:/status(?:es)?/\d+)?",
    re.IGNORECASE,
)
_U_MENTION = re.compile(rf"(?<![\w/])/?u/{_NAME}", re.IGNORECASE)
_AT_HANDLE = re.compile(r"(?<![\w.@])@(?!\d[\d.,]*[kKmMbB]?\b)(?:\\_|\w)+(?:\.(?:\\_|\w)+)*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SPACE = re.compile(r"\s+")
_LEFTOVER_USER = re.compile(r"(?<![A-Za-z0-9])u/(?!\[removed\])", re.IGNORECASE)


def scrub(text: str) -> str:
    """Unescape HTML, collapse whitespace, replace user mentions, handles and e-mail addresses."""
    text = _SPACE.sub(" ", html.unescape(text)).strip()
    text = _EMAIL.sub("[email removed]", text)
    text = _REDDIT_USER_URL.sub(REMOVED, text)
    text = _SOCIAL_PROFILE_URL.sub(REMOVED, text)
    text = _U_MENTION.sub(REMOVED, text)
    return _AT_HANDLE.sub(REMOVED, text)


def excerpt(selftext: str) -> str:
    """Scrubbed selftext cut to at most 280 characters on a word boundary (``…`` when cut)."""
    text = scrub(selftext)
    if text in ("[deleted]", "[removed]"):
        return ""
    if len(text) <= EXCERPT_CHARS:
        return text
    body = text[: EXCERPT_CHARS - 1]
    if text[len(body)] != " " and " " in body:
        body = body.rsplit(" ", 1)[0]
    return body.rstrip() + "…"


Post = tuple[str, str, int, str, str]


def reddit_rows(path: Path, since: str) -> list[Post]:
    """Read one posts file, keep posts from ``since`` (UTC date) on, and clean them."""
    since_s = parse_iso_s(since + "T00:00:00Z")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh))
    rows: list[Post] = []
    for rec in records:
        created = parse_iso_s(rec["created_utc"])
        title = scrub(rec["title"])
        if created < since_s or title in ("", "[deleted]", "[removed]"):
            continue
        rows.append((rec["post_id"], rec["subreddit"], created, title, excerpt(rec["selftext"])))
    return rows


def build_reddit(shared: Path, out: Path) -> Built:
    """Write the Reddit post sample (no usernames, no score/comment counts)."""
    csv.field_size_limit(sys.maxsize)
    seen: dict[str, Post] = {}
    per_file: list[str] = []
    for name, since in REDDIT_FILES:
        rows = reddit_rows(shared / "reddit" / name, since)
        per_file.append(f"`{name}` from {since}: {len(rows)}")
        for row in rows:
            seen.setdefault(row[0], row)
    kept = sum(int(item.rsplit(": ", 1)[1]) for item in per_file)
    rows = sorted(seen.values(), key=lambda r: (r[2], r[0]))
    for row in rows:
        if _LEFTOVER_USER.search(f"{row[3]} {row[4]}"):
            raise ValueError(f"reddit: username left in post {row[0]}")
    path = out / "reddit" / "posts.csv.gz"
    write_text(path, csv_text(REDDIT_HEADER, rows))
    start, end = rows[0][2] * 1000, rows[-1][2] * 1000
    return Built(
        path,
        len(rows),
        iso_ms(start),
        iso_ms(end),
        "; ".join(REDDIT_ORIGINS),
        "Reddit content, Reddit User Agreement applies; source repos: MIT (Crypto_Analysis), "
        "no licence file (Thesis, reddit_crypto)",
        "posts only (no comments); kept rows per file: "
        + "; ".join(per_file)
        + f"; deduplicated by post_id ({kept - len(rows)} duplicates dropped). "
        + REDDIT_CHANGES,
        "Posts from Reddit (https://www.reddit.com), usernames removed",
    )


# --- SOURCES.md, verification, summary --------------------------------------------------------


def sources_md(out: Path, built: Sequence[Built]) -> str:
    """Render the SOURCES.md text for all shipped files."""
    lines = [
        "# Replay data: sources and licences",
        "",
        "Generated by `scripts/build_replay_data.py` from the offline data pack",
        "(`../shared/data`); the origins below are copied from that pack's SOURCES.md files.",
        "All times are UTC.",
        "Market facts (candles, Fear & Greed values, order-book snapshots, numeric whale-flow",
        "aggregates) and a small username-free Reddit sample are shipped; several upstream",
        "repositories have **no licence file**, which is stated per file below.",
        "",
        "## Attribution",
        "- Fear & Greed Index: data by Alternative.me (https://alternative.me/crypto/fear-and-greed-index/).",
        "- Whale flows: hourly aggregates of Whale Alert's public channel (whale-alert.io);",
        "  no Whale Alert post text is included.",
        "- Kraken ETH/USD books: Kraken public market data.",
        "- Binance top-20 books: derived from hftbacktest raw recordings",
        "  (nkaz001/hftbacktest, MIT).",
        "- Reddit posts: from Reddit; usernames removed.",
        "- Candles: Binance public market data.",
        "",
        "## Files",
    ]
    for item in built:
        rel = item.path.relative_to(out).as_posix()
        rng = f"{item.start} → {item.end}" if item.start else "-"
        lines += [
            "",
            f"### `{rel}`",
            f"- origin: {item.origin}",
            f"- licence: {item.licence}",
            f"- rows: {item.rows:,}; range: {rng}; size: {item.path.stat().st_size:,} bytes",
            f"- changes: {item.changes}",
        ]
        if item.attribution:
            lines.append(f"- attribution: {item.attribution}")
    return "\n".join(lines) + "\n"


def count_lines(path: Path) -> int:
    """Count data lines of a (possibly gzipped) text file, proving it decompresses."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def verify(out: Path, built: Sequence[Built]) -> int:
    """Re-read every file, check row counts and sizes, print the summary; return total bytes."""
    total = 0
    print(f"{'file':58} {'bytes':>10} {'rows':>8}  range")
    for item in built:
        lines = count_lines(item.path)
        has_header = item.path.name.endswith((".csv", ".csv.gz"))
        if item.path.suffix != ".json" and lines - has_header != item.rows:
            raise ValueError(f"{item.path}: {lines} lines for {item.rows} rows")
        size = item.path.stat().st_size
        total += size
        rel = item.path.relative_to(out).as_posix()
        rng = f"{item.start} → {item.end}" if item.start else "-"
        print(f"{rel:58} {size:>10,} {item.rows:>8,}  {rng}")
    sources = out / "SOURCES.md"
    total += sources.stat().st_size
    print(f"{'SOURCES.md':58} {sources.stat().st_size:>10,}")
    print(f"{'total':58} {total:>10,}  (budget {SIZE_BUDGET_BYTES:,})")
    if total > SIZE_BUDGET_BYTES:
        raise ValueError("replay data exceeds the size budget")
    return total


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=DEFAULT_SHARED,
        help="offline data pack directory (default: ../shared/data)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output directory (default: intel/data/replay)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build every replay file, write SOURCES.md and print a verified summary."""
    args = parse_args(argv)
    shared, out = args.shared.resolve(), args.out.resolve()
    if not (shared / "README.md").is_file():
        print(f"data pack not found at {shared}", file=sys.stderr)
        return 2
    built = build_candles(shared, out)
    built.append(build_fear_greed(shared, out))
    built += build_whales(shared, out)
    built += build_orderbooks(shared, out)
    built.append(build_reddit(shared, out))
    write_text(out / "SOURCES.md", sources_md(out, built))
    verify(out, built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
