"""Grouping feedback by similar text, in Chinese and English, without a tokenizer.

Pure functions, no database. A text becomes a set of character shingles; MinHash
sketches of the sets go into an LSH index (``datasketch``) that finds the pairs worth
comparing without comparing every pair; the pairs it finds are scored exactly; and
average-linkage agglomeration over that sparse graph forms the groups.

Shingles. The text is normalised (NFKC, case-folded); punctuation, symbols and
whitespace break it into runs of letters and digits, and a run also breaks where the
script changes between CJK and anything else ("app闪退" → "app", "闪退"). A CJK run
gives its character bigrams (two Chinese characters are about a word, so no word
segmenter is needed); any other run its character trigrams, so a typo costs only
the trigrams it touches ("recieved" still shares "rec", "eiv", "ved" with
"received"). A run shorter than its n-gram size is one shingle.

Similarity is the overlap coefficient |A ∩ B| / min(|A|, |B|): feedback is short
and one line often restates another inside a longer complaint, which Jaccard
punishes for the length difference. The LSH index (``MinHashLSH``, a low Jaccard
threshold) only proposes the pairs to score; each proposed pair is scored exactly.

Groups. Average linkage: two groups merge while the mean similarity over all pairs
between them (missing pairs count 0) is at least ``threshold``. Unlike single
linkage, one stray shared phrase does not chain two topics into one. ``seeds`` are
groups that already exist (themes); new texts may join a seed, seeds never merge
with each other.

Texts in different scripts share no shingles, so a Chinese and an English line
about the same problem land in separate groups; bench/themes_eval.py measures it."""

import heapq
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
CJK_NGRAM = 2
OTHER_NGRAM = 3
#: measured on tests/feedback/data/themes_sample.csv by bench/themes_eval.py
DEFAULT_THRESHOLD = 0.15
#: pairs scoring below this are not edges of the graph; low enough to keep the weak
#: edges that average linkage needs to join a paraphrase to its group
CANDIDATE_THRESHOLD = 0.1
#: the LSH index's Jaccard threshold: two short lines that restate each other share
#: few shingles, so the index must propose pairs far below the final threshold
LSH_THRESHOLD = 0.05


def _is_cjk(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(("CJK ", "HIRAGANA", "KATAKANA", "HANGUL"))


def text_runs(text: str) -> list[tuple[str, bool]]:
    """The normalised text's runs of letters and digits, each with "is CJK"."""
    runs: list[tuple[str, bool]] = []
    current: list[str] = []
    current_cjk = False
    for ch in unicodedata.normalize("NFKC", text or "").casefold():
        if unicodedata.category(ch)[0] not in "LN":
            if current:
                runs.append(("".join(current), current_cjk))
                current = []
            continue
        cjk = _is_cjk(ch)
        if current and cjk != current_cjk:
            runs.append(("".join(current), current_cjk))
            current = []
        current.append(ch)
        current_cjk = cjk
    if current:
        runs.append(("".join(current), current_cjk))
    return runs


def shingles(text: str, *, cjk_ngram: int = CJK_NGRAM, other_ngram: int = OTHER_NGRAM) -> frozenset[str]:
    out: set[str] = set()
    for run, cjk in text_runs(text):
        n = cjk_ngram if cjk else other_ngram
        if len(run) <= n:
            out.add(run)
        else:
            out.update(run[i : i + n] for i in range(len(run) - n + 1))
    return frozenset(out)


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def similar_pairs(
    sets: Mapping[int, frozenset[str]],
    *,
    candidate_threshold: float = CANDIDATE_THRESHOLD,
    lsh_threshold: float = LSH_THRESHOLD,
    num_perm: int = NUM_PERM,
) -> dict[tuple[int, int], float]:
    """``{(a, b): overlap}`` (a < b) for the pairs the LSH index proposes, scored exactly;
    pairs below ``candidate_threshold`` are dropped. The index is approximate: a pair
    it does not propose is not scored, which is what keeps this from being n²."""
    keys = [k for k, s in sets.items() if s]
    if len(keys) < 2:
        return {}
    sketches = MinHash.bulk(([s.encode() for s in sets[k]] for k in keys), num_perm=num_perm)
    index = MinHashLSH(threshold=lsh_threshold, num_perm=num_perm)
    with index.insertion_session() as session:
        for key, sketch in zip(keys, sketches, strict=True):
            session.insert(key, sketch, check_duplication=False)
    edges: dict[tuple[int, int], float] = {}
    for key, sketch in zip(keys, sketches, strict=True):
        for other in index.query(sketch):
            if other <= key:
                continue  # each pair once, from its smaller key
            score = overlap(sets[key], sets[other])
            if score >= candidate_threshold:
                edges[(key, other)] = score
    return edges


@dataclass
class _Clusters:
    """Average-linkage state over a sparse similarity graph: ``links[(a, b)]`` is the sum
    of the similarities between clusters a and b (a < b)."""

    members: dict[int, list[int]]
    seeded: set[int]
    links: dict[tuple[int, int], float] = field(default_factory=dict)
    neighbours: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))

    def mean(self, a: int, b: int) -> float:
        return self.links[(a, b) if a < b else (b, a)] / (len(self.members[a]) * len(self.members[b]))

    def add_link(self, a: int, b: int, value: float) -> None:
        if a == b:
            return
        key = (a, b) if a < b else (b, a)
        self.links[key] = self.links.get(key, 0.0) + value
        self.neighbours[a].add(b)
        self.neighbours[b].add(a)

    def merge(self, keep: int, gone: int) -> None:
        self.members[keep].extend(self.members.pop(gone))
        if gone in self.seeded:
            self.seeded.discard(gone)
            self.seeded.add(keep)
        for other in self.neighbours.pop(gone, set()):
            self.neighbours[other].discard(gone)
            value = self.links.pop((gone, other) if gone < other else (other, gone))
            if other != keep:
                self.add_link(keep, other, value)
        self.neighbours[keep].discard(gone)


def _agglomerate(
    keys: Iterable[int], edges: Mapping[tuple[int, int], float], threshold: float, seeds: Mapping[int, list[int]]
) -> tuple[dict[int, list[int]], list[list[int]]]:
    """(members per seed, new groups). A cluster is named by its smallest starting key;
    a seed's by the seed's own key (negative, so it never clashes with a text id)."""
    seed_of = {k: -(i + 1) for i, ks in enumerate(seeds.values()) for k in ks}
    seed_name = {-(i + 1): s for i, s in enumerate(seeds)}
    members: dict[int, list[int]] = {}
    for key in keys:
        members.setdefault(seed_of.get(key, key), []).append(key)
    state = _Clusters(members=members, seeded={c for c in members if c < 0})
    for (a, b), value in edges.items():
        state.add_link(seed_of.get(a, a), seed_of.get(b, b), value)
    heap = [(-state.mean(a, b), a, b) for a, b in state.links]
    heapq.heapify(heap)
    while heap:
        negative, a, b = heapq.heappop(heap)
        if a not in state.members or b not in state.members or b not in state.neighbours[a]:
            continue
        current = state.mean(a, b)
        if current != -negative:
            continue  # stale: one side has grown since this entry was pushed
        if current < threshold:
            break
        if a in state.seeded and b in state.seeded:
            continue  # two existing themes stay two themes
        keep, gone = (a, b) if a < b else (b, a)
        state.merge(keep, gone)
        for other in state.neighbours[keep]:
            x, y = (keep, other) if keep < other else (other, keep)
            heapq.heappush(heap, (-state.mean(x, y), x, y))
    grown = {seed_name[c]: sorted(m) for c, m in state.members.items() if c in state.seeded}
    new = [sorted(m) for c, m in state.members.items() if c not in state.seeded and len(m) > 1]
    new.sort(key=lambda g: (-len(g), g[0]))
    return grown, new


def _prepare(texts: Mapping[int, str], cjk_ngram: int, other_ngram: int) -> dict[int, frozenset[str]]:
    return {k: shingles(t, cjk_ngram=cjk_ngram, other_ngram=other_ngram) for k, t in texts.items()}


def themes_cluster(
    texts: Mapping[int, str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    candidate_threshold: float = CANDIDATE_THRESHOLD,
    cjk_ngram: int = CJK_NGRAM,
    other_ngram: int = OTHER_NGRAM,
    num_perm: int = NUM_PERM,
) -> list[list[int]]:
    """Groups of ids whose texts are alike, largest first, ids sorted; singletons dropped.
    Deterministic for the same input (MinHash's seed is fixed)."""
    sets = _prepare(texts, cjk_ngram, other_ngram)
    edges = similar_pairs(sets, candidate_threshold=min(candidate_threshold, threshold), num_perm=num_perm)
    _, groups = _agglomerate([k for k, s in sets.items() if s], edges, threshold, {})
    return groups


def themes_grow(
    texts: Mapping[int, str],
    *,
    seeds: Mapping[int, list[int]],
    threshold: float = DEFAULT_THRESHOLD,
    candidate_threshold: float = CANDIDATE_THRESHOLD,
    cjk_ngram: int = CJK_NGRAM,
    other_ngram: int = OTHER_NGRAM,
    num_perm: int = NUM_PERM,
) -> tuple[dict[int, list[int]], list[list[int]]]:
    """Like :func:`themes_cluster`, starting from existing groups: ``seeds`` maps a
    theme's id to ids in ``texts`` that are already its members. Returns the ids that
    join each seed (its own members left out; seeds nobody joins left out) and the new
    groups of the rest."""
    sets = _prepare(texts, cjk_ngram, other_ngram)
    seeds = {s: [k for k in ks if sets.get(k)] for s, ks in seeds.items()}
    seeds = {s: ks for s, ks in seeds.items() if ks}
    edges = similar_pairs(sets, candidate_threshold=min(candidate_threshold, threshold), num_perm=num_perm)
    grown, groups = _agglomerate([k for k, s in sets.items() if s], edges, threshold, seeds)
    joins = {}
    for seed, members in grown.items():
        own = set(seeds[seed])
        new = [k for k in members if k not in own]
        if new:
            joins[seed] = new
    return joins, groups


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def central_member(group: Iterable[int], texts: Mapping[int, str]) -> int:
    """The member most like the rest of its group: its text is the group's suggested
    label. Summed Jaccard, not overlap: on overlap a short fragment that every other
    line contains ("验证码") would win; the lowest id wins a tie."""
    ids = sorted(group)
    sets = _prepare({k: texts[k] for k in ids}, CJK_NGRAM, OTHER_NGRAM)
    return max(ids, key=lambda k: (sum(jaccard(sets[k], sets[o]) for o in ids if o != k), -k))
