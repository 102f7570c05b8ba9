"""What every scene source speaks: normalised scene records and the Source protocol."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from polarscan.common.errors import ProcessingError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from shapely.geometry import Polygon
    from shapely.geometry.base import BaseGeometry

    from scanner.aoi import AOI

log = logging.getLogger(__name__)

NAME_RE = re.compile(
    r"^(?P<mission>S1[A-D])_(?P<mode>[A-Z0-9]{2})_(?P<ptype>[A-Z]{3})(?P<res>[FHM_])_"
    r"(?P<level>\d)(?P<cls>[SA])(?P<pol>SH|SV|DH|DV|HH|VV|HV|VH)_"
    r"(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})_"
    r"(?P<crc>[0-9A-F]{4})(?:_COG)?(?:\.SAFE)?(?:\.zip)?\Z",
    re.IGNORECASE,
)

# ---- what is searched: acquisition modes and dual-pol GRD products ------------------------------

#: Acquisition modes the scanner reads, and the GRD resolution class searched in each
#: (``EW_GRDM_1S``, ``IW_GRDH_1S``); a search asks for all of them unless told otherwise.
MODES = ("EW", "IW")
GRD_RESOLUTION = {"EW": "M", "IW": "H"}
#: the dual-polarisation letters of a product name → (co-pol, cross-pol)
DUAL_POLS = {"DH": ("HH", "HV"), "DV": ("VV", "VH")}
_SINGLE_POLS = {"SH": ("HH",), "SV": ("VV",), "HH": ("HH",), "VV": ("VV",), "HV": ("HV",),
                "VH": ("VH",)}  # fmt: skip


def check_modes(modes: str | Iterable[str] | None) -> tuple[str, ...]:
    """Acquisition modes to search, upper case, each once, in :data:`MODES` order: ``None`` →
    all; ``"EW,IW"`` or ``["ew"]`` are read too. An unknown or empty list is a
    :class:`UsageError` (``key="modes"``)."""
    if modes is None:
        return MODES
    items = modes.split(",") if isinstance(modes, str) else list(modes)
    wanted = [str(m).strip().upper() for m in items if str(m).strip()]
    bad = [m for m in wanted if m not in MODES]
    if bad or not wanted:
        problem = (
            f"unknown acquisition mode {bad[0]!r}" if bad else "no acquisition mode given"
        )
        raise UsageError(
            problem, f"give one or more of {', '.join(MODES)} (e.g. EW,IW)", key="modes"
        )
    return tuple(m for m in MODES if m in wanted)


def name_acquisition(name: str) -> tuple[str, tuple[str, ...]] | None:
    """``(mode, polarisations)`` of a product name (co-pol first: ``("EW", ("HH", "HV"))``),
    ``None`` when the name does not parse."""
    m = NAME_RE.match(name)
    if m is None:
        return None
    pol = m["pol"].upper()
    return m["mode"].upper(), DUAL_POLS.get(pol) or _SINGLE_POLS.get(pol, (pol,))


def is_wanted_name(name: str, modes: Iterable[str] = MODES) -> bool:
    """A dual-pol GRD product of one of ``modes`` as the scanner reads them: ``…_EW_GRDM_1SDH_…``,
    ``…_IW_GRDH_1SDV_…`` (HH+HV or VV+VH in either mode). Single-pol products, other modes
    (SM, WV), other resolutions and other product types are not."""
    m = NAME_RE.fullmatch(name)
    if not m:
        return False
    mode = m["mode"].upper()
    return (
        mode in tuple(modes)
        and m["ptype"].upper() == "GRD"
        and m["res"].upper() == GRD_RESOLUTION.get(mode)
        and m["pol"].upper() in DUAL_POLS
    )


@dataclass(frozen=True)
class Scene:
    """One Sentinel-1 product as any source describes it (times are timezone-aware UTC)."""

    id: str  # the provider's id (CDSE UUID, ASF granule, local path)
    name: str  # product name without .SAFE / .zip / _COG
    source: str  # "cdse", "asf", "dhus", "local", "demo"
    start: datetime
    stop: datetime
    footprint: BaseGeometry  # lon/lat (EPSG:4326)
    size: int | None = None
    checksum: tuple[str, str] | None = None  # (algorithm "MD5"|"BLAKE3"|…, hex digest)
    published: datetime | None = None
    url: str | None = None
    attrs: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def parsed(self) -> dict[str, str]:
        m = NAME_RE.match(self.name)
        return m.groupdict() if m else {}

    @property
    def datatake_key(self) -> tuple[str, int, str] | None:
        """(mission, absolute orbit, datatake id): slices sharing it join into one strip."""
        p = self.parsed
        return (p["mission"].upper(), int(p["orbit"]), p["datatake"].upper()) if p else None

    @property
    def mode(self) -> str | None:
        """Acquisition mode from the name (``EW``, ``IW``…), ``None`` if it does not parse."""
        acq = name_acquisition(self.name)
        return acq[0] if acq else None

    @property
    def polarisations(self) -> tuple[str, ...]:
        """Polarisations from the name, co-pol first (``("HH", "HV")``); ``()`` if unknown."""
        acq = name_acquisition(self.name)
        return acq[1] if acq else ()


# ---- names from the network are never paths --------------------------------------------------


def is_product_name(name: object) -> bool:
    """Whether ``name`` is a Sentinel-1 product name, optionally with ``_COG``, ``.SAFE``,
    ``.zip`` (so no folder separators, no ``..``, nothing but the naming pattern's characters)."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


_OTHER_S1_RE = re.compile(r"S1[A-D]_[A-Z0-9_]+(?:\.SAFE)?(?:\.zip)?", re.IGNORECASE)


def is_other_product_name(name: object) -> bool:
    """A tidy Sentinel-1 name of another kind (``S1A_AUX_…``, ``S1A_OPER_…``): letters, digits
    and ``_`` only. Such records are foreign; anything messier is unparseable."""
    return isinstance(name, str) and _OTHER_S1_RE.fullmatch(name) is not None


def check_product_name(name: object, what: str = "product name") -> str:
    """``name`` if :func:`is_product_name`, else a :class:`ProcessingError`: a provider that
    sends another name (``../../x.zip``, ``/etc/cron.d/x``) must never choose where we write."""
    if not is_product_name(name):
        raise ProcessingError(
            f"refusing the {what} {str(name)[:120]!r}: it is not a Sentinel-1 product name "
            "(S1x_MM_TTTR_LFPP_<start>_<stop>_<orbit>_<datatake>_<crc>[_COG][.SAFE][.zip])",
            "nothing was written; report the record to the provider",
        )
    return str(name)


def path_inside(dest_dir: str | Path, file_name: object) -> Path:
    """``dest_dir / file_name`` after checking that the name is a product name and that the
    resolved path (symbolic links followed) lies directly inside ``dest_dir``."""
    name = check_product_name(file_name, "file name")
    root = Path(dest_dir).resolve()
    target = (root / name).resolve()
    if target.parent != root:
        raise ProcessingError(
            f"refusing to write {name}: {root / name} leads to {target}, outside {root}",
            f"remove the link {root / name} and rerun",
        )
    return Path(dest_dir) / name


# ---- what a search skipped and why ------------------------------------------------------------

#: Why a record did not become a scene: another product type, mode or polarisation; a COG
#: twin merged into its original SAFE; the same product again (overlapping search polygons, a
#: zip beside its SAFE folder); a footprint or time outside the search; a record that could not
#: be read (missing or garbled id, dates, footprint, or a name that is not a product name).
SKIP_REASONS = ("foreign", "twin", "duplicate", "outside", "unparseable")
SAMPLE_CHARS = 160  # how much of a broken record an error or a warning quotes


def sample_of(record: Any) -> str:
    """A short, single-line quote of what came back, for messages."""
    try:
        text = json.dumps(record, default=str, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(record)
    return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 1] + "…"


@dataclass(frozen=True)
class Skipped:
    """A record a source did not turn into a :class:`Scene`, and why (one of
    :data:`SKIP_REASONS`); ``sample`` quotes the record for messages."""

    reason: str
    name: str
    detail: str = ""
    sample: str = ""


@dataclass(frozen=True)
class SearchStats:
    """What one ``search`` saw: ``records`` the provider returned (or products a listing
    found), ``kept`` scenes yielded, and how many were skipped for each of
    :data:`SKIP_REASONS`. ``samples`` quotes a few unparseable records. A nightly run that
    finds nothing can tell "nothing there" (records 0) from "nothing readable"."""

    source: str
    records: int = 0
    kept: int = 0
    foreign: int = 0
    twin: int = 0
    duplicate: int = 0
    outside: int = 0
    unparseable: int = 0
    samples: tuple[str, ...] = ()

    @property
    def skipped(self) -> dict[str, int]:
        """``{reason: count}`` for every reason, zeros included."""
        return {r: getattr(self, r) for r in SKIP_REASONS}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: source, records, kept, skipped {reason: n}, samples."""
        return {
            "source": self.source,
            "records": self.records,
            "kept": self.kept,
            "skipped": self.skipped,
            "samples": list(self.samples),
        }

    def summary(self) -> str:
        """``12 record(s), 3 kept; skipped: 7 foreign, 2 twin`` (non-zero reasons only)."""
        parts = [f"{n} {r}" for r, n in self.skipped.items() if n]
        tail = f"; skipped: {', '.join(parts)}" if parts else ""
        return f"{self.records} record(s), {self.kept} kept{tail}"


class SearchTally:
    """Counts one search as it goes; :meth:`freeze` gives the :class:`SearchStats`."""

    MAX_SAMPLES = 3

    def __init__(self, source: str) -> None:
        self.source = source
        self.records = 0
        self.counts: Counter[str] = Counter()
        self.samples: list[str] = []

    def skip(self, reason: str, sample: str = "") -> None:
        self.counts[reason] += 1
        if reason == "unparseable" and sample and len(self.samples) < self.MAX_SAMPLES:
            self.samples.append(sample)

    def freeze(self, kept: int) -> SearchStats:
        return SearchStats(self.source, self.records, kept, samples=tuple(self.samples),
                           **{r: self.counts[r] for r in SKIP_REASONS})  # fmt: skip


def check_page(results: Sequence[Scene | Skipped | None], where: str) -> None:
    """One catalogue answer (a page) read: if it had entries and none could be read, that is
    a :class:`ProcessingError` naming ``where`` (the URL) and quoting an entry — a format
    change must not look like a quiet night; if only some could not be read, a warning."""
    bad = [
        r for r in results
        if not isinstance(r, Scene) and (not isinstance(r, Skipped) or r.reason == "unparseable")
    ]  # fmt: skip
    if not bad:
        return
    first = bad[0]
    quote = (first.sample or first.name) if isinstance(first, Skipped) else "null"
    why = f" ({first.detail})" if isinstance(first, Skipped) and first.detail else ""
    if len(bad) == len(results):
        raise ProcessingError(
            f"{where} answered {len(results)} entries and none could be read{why}; "
            f"the first: {quote}",
            "retry later; if it persists the catalogue's format changed (report it)",
        )
    log.warning(
        "%s: %d of %d entries could not be read and were skipped%s; the first: %s",
        where, len(bad), len(results), why, quote,
    )  # fmt: skip


class Source(Protocol):
    """A place scenes come from. Implementations live in ``scanner/sources/<name>.py``."""

    name: str
    #: What the last finished :meth:`search` skipped and why (``None`` before any search).
    #: Set once the search has read the provider, i.e. by the time its first scene is
    #: yielded, or when it ends without any.
    last_search_stats: SearchStats | None
    #: retries per download after the first attempt (sources that copy nothing ignore it)
    retries: int
    #: draw a download progress bar on stderr
    progress: bool
    #: acquisition modes a search asks for (:data:`MODES` unless narrowed: :func:`check_modes`)
    modes: tuple[str, ...]

    def search(
        self,
        aoi: AOI,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        published_after: datetime | None = None,
    ) -> Iterator[Scene]:
        """Dual-pol GRD scenes of :attr:`modes` (EW GRDM, IW GRDH; HH+HV or VV+VH)
        intersecting ``aoi`` (deduplicated), oldest first. Records skipped are counted in
        :attr:`last_search_stats` (single-pol products and other modes as ``foreign``); a
        provider answer of which no entry could be read is a
        :class:`~polarscan.common.errors.ProcessingError`."""
        ...

    def download(self, scene: Scene, dest_dir: Path) -> Path:
        """A verified local product (SAFE folder or zip) for ``scene`` under ``dest_dir``.
        Remote sources write only ``dest_dir / <product name>`` (:func:`path_inside`)."""
        ...

    def check_credentials(self) -> None:
        """Raise :class:`~polarscan.common.errors.UsageError` now (before any work) if downloads will
        need credentials that are missing, naming the variables / ~/.netrc entry to set."""
        ...

    def product(self, ident: str) -> Scene:
        """The scene of one product id or name; a :class:`UsageError` for an unknown one, or
        when this source cannot look products up (:func:`no_product_lookup`)."""
        ...


def no_product_lookup(source: Source, ident: str) -> Scene:
    """``product`` of a source that cannot look products up by id or name."""
    raise UsageError(
        f"the {source.name!r} source cannot look up products by id or name (asked for {ident!r})",
        "use the cdse, asf or local source, or run a scan",
        key="source",
    )


# ---- shared by the sources' search() ------------------------------------------------------------


def require_start(
    start: datetime | None, published_after: datetime | None, problem: str, fix: str
) -> None:
    """Remote catalogues refuse open-ended searches: a start or a publication time is needed."""
    if start is None and published_after is None:
        raise UsageError(problem, fix, key="since")


def slice_key(name: str) -> str:
    """A product name without its CRC (and ``_COG``/``.SAFE``/``.zip``): one slice's original
    and its COG twin, which has a CRC of its own (``…_53C5`` → ``…_74F9_COG``), share it."""
    m = NAME_RE.match(name)
    return name if m is None else name[: m.start("crc") - 1]


def unique_scenes(
    candidates: Iterable[Scene | Skipped | None],
    aoi: AOI | None,
    prefer: Callable[[Scene, Scene], Scene] | None = None,
    tally: SearchTally | None = None,
) -> list[Scene]:
    """The candidates (from one query per AOI search polygon) that really touch ``aoi``, each
    product once, oldest sensing time first. Polygons overlap and a catalogue matches on a
    coarse footprint, hence both checks. Of two records of one name the first is kept, or
    ``prefer(old, new)`` picks. ``tally`` counts every candidate and why it was dropped
    (``None`` counts as unparseable)."""
    tally = tally or SearchTally("?")
    found: dict[str, Scene] = {}
    for scene in candidates:
        tally.records += 1
        if not isinstance(scene, Scene):
            skipped = scene if scene is not None else Skipped("unparseable", "null")
            tally.skip(skipped.reason, skipped.sample or skipped.name)
            continue
        if aoi is not None and not aoi.intersects(scene.footprint):
            log.debug("%s: footprint misses the area in EPSG:3413", scene.name)
            tally.skip("outside")
            continue
        key = slice_key(scene.name)
        old = found.get(key)
        if old is None:
            found[key] = scene
            continue
        twins = bool(old.attrs.get("cog")) != bool(scene.attrs.get("cog"))
        tally.skip("twin" if twins else "duplicate")
        if prefer is not None:
            found[key] = prefer(old, scene)
    return sorted(found.values(), key=lambda s: (s.start, s.name))


def in_modes(record: Scene | Skipped | None, modes: Iterable[str]) -> Scene | Skipped | None:
    """``record``, or a ``foreign`` :class:`Skipped` for a scene of a mode not searched (a
    catalogue that ignores part of a query, a folder holding both modes)."""
    if isinstance(record, Scene) and record.mode is not None and record.mode not in modes:
        return Skipped("foreign", record.name, f"mode {record.mode} not searched")
    return record


def filter_scenes(
    scenes: Iterable[Scene],
    aoi: AOI | None,
    start: datetime | None,
    end: datetime | None,
    published_after: datetime | None,
    *,
    closed: bool,
) -> Iterator[Scene]:
    """Sources that list everything (local folder, demo) filter here. ``closed``: a scene that
    only touches the window's edge (stop == start or start == end) counts as inside."""
    for scene in scenes:
        if start is not None and (scene.stop < start if closed else scene.stop <= start):
            continue
        if end is not None and (scene.start > end if closed else scene.start >= end):
            continue
        if (
            published_after is not None
            and scene.published is not None
            and scene.published <= published_after
        ):
            continue
        if aoi is not None and not aoi.intersects(scene.footprint):
            continue
        yield scene


class CatalogueSource:
    """``search`` for sources that ask a remote catalogue once per AOI search polygon (CDSE,
    ASF, DHuS): check the time window, query each polygon, keep each product once, count
    what was skipped (:attr:`last_search_stats`). Subclasses give :meth:`check_window` and
    :meth:`query`, and may override :meth:`prefer` and :meth:`product` (by default: not
    supported)."""

    name = "catalogue"
    retries: int = 5
    progress: bool = False
    modes: tuple[str, ...] = MODES
    last_search_stats: SearchStats | None = None

    def product(self, ident: str) -> Scene:
        return no_product_lookup(self, ident)  # type: ignore[arg-type]

    def check_window(
        self, start: datetime | None, end: datetime | None, published_after: datetime | None
    ) -> None:
        """Raise :class:`UsageError` for a window the catalogue cannot search."""
        raise NotImplementedError

    def query(
        self,
        poly: Polygon | None,
        start: datetime | None,
        end: datetime | None,
        published_after: datetime | None,
    ) -> Iterator[Scene | Skipped]:
        """Every record the catalogue matches in one lon/lat search polygon (``None``:
        anywhere); a :class:`Skipped` for an unusable one (pages checked with
        :func:`check_page`). :func:`unique_scenes` sorts them out."""
        raise NotImplementedError

    def prefer(self, old: Scene, new: Scene) -> Scene:
        """Of two records of one product, the one to keep: the first found."""
        return old

    def search(
        self,
        aoi: AOI | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        published_after: datetime | None = None,
    ) -> Iterator[Scene]:
        """Wanted scenes touching ``aoi``, deduplicated, oldest sensing time first."""
        self.check_window(start, end, published_after)
        polygons = aoi.search_polygons() if aoi is not None else [None]
        found = (
            in_modes(s, self.modes)
            for poly in polygons
            for s in self.query(poly, start, end, published_after)
        )
        tally = SearchTally(self.name)
        scenes = unique_scenes(found, aoi, self.prefer, tally)
        self.last_search_stats = stats = tally.freeze(len(scenes))
        log.info("%s search: %s", self.name, stats.summary())
        yield from scenes


class ListingSource:
    """``search`` for sources that list every scene they hold (a local folder, the demo) and
    filter the list. ``closed``: whether a scene only touching the window's edge counts.
    Subclasses give :meth:`scenes`, or :meth:`records` when they skip things."""

    name = "listing"
    closed: bool = False
    retries: int = 0  # nothing is downloaded
    progress: bool = False
    modes: tuple[str, ...] = MODES
    last_search_stats: SearchStats | None = None

    def product(self, ident: str) -> Scene:
        """The listed scene with this id or name (with or without ``.SAFE``/``.zip``)."""
        name = Path(ident).name
        for suffix in (".zip", ".SAFE", "_COG"):
            name = name.removesuffix(suffix)
        for scene in self.scenes():
            if ident in (scene.id, scene.name) or scene.name == name:
                return scene
        raise UsageError(
            f"no product {ident!r} in the {self.name!r} source",
            "give the id or name of a product it lists (the search command lists them)",
            key="products",
        )

    def scenes(self) -> list[Scene]:
        raise NotImplementedError

    def records(self) -> list[Scene | Skipped]:
        """Everything the listing found, usable or not (default: :meth:`scenes`)."""
        return list(self.scenes())

    def search(
        self,
        aoi: AOI | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        published_after: datetime | None = None,
    ) -> Iterator[Scene]:
        tally = SearchTally(self.name)
        listed: list[Scene] = []
        for record in self.records():
            tally.records += 1
            rec = in_modes(record, self.modes)
            if isinstance(rec, Scene):
                listed.append(rec)
            elif rec is not None:
                tally.skip(rec.reason, rec.sample or rec.name)
        kept = list(filter_scenes(listed, aoi, start, end, published_after, closed=self.closed))
        for _ in range(len(listed) - len(kept)):
            tally.skip("outside")
        self.last_search_stats = tally.freeze(len(kept))
        yield from kept
