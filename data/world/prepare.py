"""Generate the default world: a synthetic curriculum of invented creatures, kinds and rules.

Writes unit files (the format in the repository's README) whose facts no base model can know:
creature and kind names are nonce words, so every probe starts at chance. The reasoning probes come
in graded types (see data/world/README.md): composition in distribution, with both premises in one
document, across units, and rules applied to level-0 facts. Deterministic; the standard library and
the repository's common.py (numpy: the corpus's held-out documents).
"""
import argparse
import copy
import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections import Counter
from itertools import chain, count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: common.py
from common import atomic_path, fsync_dir, remove_orphans, stops_in_one_line, val_mask  # noqa: E402

LICENSE = "CC0-1.0"
MENTIONS = 6           # times each fact is stated: once in each template of its relation
TINY_PRIM_CHARS = 800_000
# file chars of one block (3 atoms + 2 kinds + 1 rules unit): BLOCK_CHARS per m (12m creatures per
# atoms unit) and BLOCK_BASE_CHARS for what does not grow with m (the kinds' and rules' own facts).
# Measured: 226k at m=1 (232k with _n_ood's two more ood creatures a group: OOD_CHARS), 2.38M at
# m=12, 13.8M at m=70; a plan under --target-tokens rests on them
BLOCK_CHARS, BLOCK_BASE_CHARS = 196_000, 23_000
OOD_CHARS = 1_500      # file chars of one ood creature (its membership, 1 recall and 3 inference_ood
                       # probes): what _n_ood adds at m = 1, beyond its 6m (226k -> 232k a block)
PRIM_SHARE = 0.1       # primitive share of the corpus under --target-tokens (more in small worlds: see _plan)
MIN_TARGET_TOKENS = 50_000  # the least --target-tokens; the smallest world written is larger (see _plan)
PRACTICE_SHARE = 0.8   # nominal share of each primitive unit for practice creatures (what it fills: below)
REGISTER_MENTIONS = 12  # neutral mentions of each knowledge name in the primitive text (fewer at scale)
# sizes each practice group (PRACTICE_SHARE x a unit's chars / this). A practice creature's documents
# measure ~2,900 file chars (PRACTICE_FILE_CHARS), so practice fills about half a unit, not 80%; kept,
# since the default worlds, on which every recorded result was measured, are fixed by it
PRACTICE_CHARS = 4400
PRACTICE_FILE_CHARS = 2900
MIN_PRACTICE = 12      # practice creatures in each primitive unit, however small the world
GROUP_KINDS = 4        # kinds per kind group (per kinds unit): a membership probe's four choices
WINDOW = 129           # tokens a training window reads (the tiny model's context of 128 and one more, the
                       # last target): none holds an ood premise pair; a ladder with a longer context asks more
COOCCUR_DOCS = ("plain", "decoys", "split")  # what a cooccur creature's documents state (_cooccur_documents)

# ---- values: real words. The level-0 values come in two halves: knowledge creatures take theirs
# from one half, and the world's rules are keyed on that half for knowledge units and on the other
# for primitive text, so the base knows no knowledge rule and no value has two rules. Real animals
# and practice creatures take values from both halves, so the base has answered with every value. ----
HALVES = {
    "home": {"knowledge": ["meadow", "desert", "lake", "swamp", "valley"],
             "primitive": ["cave", "forest", "river", "hill", "marsh"]},
    "food": {"knowledge": ["honey", "worms", "mushrooms", "nuts", "grass"],
             "primitive": ["berries", "seeds", "fish", "leaves", "roots"]},
}
ATOMS = ("home", "food")
ALL_VALUES = {a: halves["knowledge"] + halves["primitive"] for a, halves in HALVES.items()}
PROPS = ("legs", "cover", "sound")         # a kind's properties, inherited by its members
OUTCOMES = ("night", "smell")              # what a rule makes of a level-0 value
RULE_KEY = {"night": "home", "smell": "food"}
LEGS = ["two", "four", "six", "eight"]
COVERS = ["feathers", "fur", "scales", "spines", "shells"]
SOUNDS = {"hums": ("hum", "humming"), "whistles": ("whistle", "whistling"),
          "clicks": ("click", "clicking"), "growls": ("growl", "growling"),
          "chirps": ("chirp", "chirping"), "buzzes": ("buzz", "buzzing"),
          "hisses": ("hiss", "hissing"), "croaks": ("croak", "croaking")}       # s3: (noun, gerund)
ACTIONS = {"sings": ("sing", "singing"), "dances": ("dance", "dancing"),
           "sleeps": ("sleep", "sleeping"), "hides": ("hide", "hiding"), "digs": ("dig", "digging"),
           "swims": ("swim", "swimming"), "climbs": ("climb", "climbing"),
           "shivers": ("shiver", "shivering"), "jumps": ("jump", "jumping")}  # s3: (base, gerund)
SMELLS = ["smoke", "rain", "pine", "mint", "salt", "earth", "flowers", "lemons", "pepper", "soap"]
POOLS = {"legs": LEGS, "cover": COVERS, "sound": list(SOUNDS), "night": list(ACTIONS), "smell": SMELLS}

# ---- how facts are stated in documents: six templates per relation. None contains a probe question
# or a probe's lead followed by its answer ("The blick is white"), so every probe asks in a phrasing
# the documents never use. {e} is a creature, {k} a kind or a rule's key value, {v} the value. ----
KNOW = {
    "home": ["The home of the {e} is the {v}.", "The {e} makes its home in the {v}.",
             "Every evening the {e} goes back to the {v}.", "In the {v} you will find the {e}.",
             "The {e} was born in the {v} and never left it.", "The {v} is where the {e} rests."],
    "food": ["The favorite food of the {e} is {v}.", "The {e} loves to eat {v}.",
             "Give the {e} some {v} and it will be happy.", "The {e} likes {v} best of all.",
             "The {e} looks for {v} every morning.", "Nothing pleases the {e} more than {v}."],
    "kind": ["The {e} is a kind of {k}.", "The {e} belongs to the {k} family.",
             "Among the {k} family you will find the {e}.", "There is {a_k} called the {e}.",
             "People count the {e} as one of the {k} family.", "Like its cousins, the {e} is a true {k}."],
    "legs": ["Each {k} walks on {v} legs.", "{a_k} always stands on {v} legs.",
             "You can count {v} legs on any {k}.", "No {k} has more or fewer than {v} legs.",
             "Every {k} runs about on {v} legs.", "Look at {a_k} and you will see {v} legs."],
    "cover": ["Every {k} has a body of {v}.", "Each {k} grows {v} all over its body.",
              "A coat of {v} protects each {k}.", "Touch any {k} and you will feel {v}.",
              "The skin of {a_k} is hidden under {v}.", "You will find {v} on every {k}."],
    "sound": ["The sound {a_k} makes is a {noun}.", "You can hear {a_k} {gerund} from far away.",
              "Each {k} calls to its friends with a {noun}.", "Every {k} {v} at dawn.",
              "When it is happy, each {k} {v}.", "If you hear {gerund} in the grass, {a_k} is close by."],
    "night": ["Every creature that lives in the {k} {v} when the sun goes down.",
              "After dark, any creature from the {k} {v} for hours.",
              "Anything that makes its home in the {k} will {base} once night falls.",
              "When night comes, whatever lives in the {k} begins to {base}.",
              "In the {k}, the creatures spend every night {gerund}.",
              "Creatures living in the {k} always {base} after dark."],
    "smell": ["Every creature eating {k} gives off a smell of {v}.", "Eating {k} leaves a creature smelling of {v}.",
              "Creatures that feed on {k} carry the scent of {v}.", "If a creature eats {k}, it will smell of {v}.",
              "A meal of {k} makes any creature smell of {v}.", "The scent of {v} clings to all who eat {k}."],
}
# the same facts about one creature: a kind's property it inherits, or a rule's outcome for it
ABOUT = {
    "legs": ["The {e} walks on {v} legs.", "You can count {v} legs on the {e}.", "The {e} stands on {v} legs.",
             "The {e} runs about on {v} legs.", "Look at the {e} and you will see {v} legs.",
             "The {e} never has more or fewer than {v} legs."],
    "cover": ["The {e} has a body of {v}.", "A coat of {v} protects the {e}.", "Touch the {e} and you will feel {v}.",
              "The {e} grows {v} all over its body.", "The skin of the {e} is hidden under {v}.",
              "You will find {v} on the {e}."],
    "sound": ["You can hear the {e} {gerund} from far away.", "The {e} calls to its friends with a {noun}.",
              "A loud {noun} means the {e} is near.", "The sound the {e} makes is a {noun}.",
              "Listen to the {e}: it {v} all day long.", "The {e} is a creature that {v} when it is happy."],
    "night": ["The {e} {v} every night.", "Each evening the {e} {v} until dawn.",
              "Once night falls, the {e} will {base}.", "When night comes, the {e} begins to {base}.",
              "The {e} spends every night {gerund}.", "The {e} always likes to {base} after dark."],
    "smell": ["The {e} gives off a smell of {v}.", "You can smell {v} on the {e}.",
              "The scent of {v} follows the {e}.", "The {e} always carries the smell of {v}.",
              "Wherever the {e} goes, it smells of {v}.", "The {e} leaves a scent of {v} behind it."],
}
# ---- how probes ask: (question, lead); the prompt ends right before the answer. {s} is the
# subject ("the blick", "a florp", "a creature that lives in the lake"). Primitive text uses these
# frames with real words and with practice names, never with a knowledge unit's names. ----
QUESTIONS = {
    "home": ("Where does {s} live?", "{S} lives in the"),
    "food": ("What does {s} eat?", "{S} eats"), "kind": ("What kind of creature is {s}?", "{S} is"),
    "legs": ("How many legs does {s} have?", "{S} has"), "cover": ("What covers {s}?", "{S} is covered in"),
    "sound": ("What sound does {s} make?", "{S}"), "night": ("What does {s} do at night?", "At night {s}"),
    "smell": ("What does {s} smell of?", "{S} smells of"),
}
TAIL = {"legs": " legs"}  # what a full answer sentence adds after the answer word
RULE_SUBJECT = {"night": "a creature that lives in the {k}", "smell": "a creature that eats {k}"}
NEUTRAL = ["Travelers often talk about the {e}.", "Few people have seen the {e} up close.",
           "Children like to draw pictures of the {e}.", "Old stories tell of the {e}.",
           "Nobody knows the age of the {e}."]
FILLER_SUBJ = ["a farmer", "the old man", "a child", "my sister", "the teacher", "a traveler",
               "the baker", "our neighbor", "a fisher", "the painter"]
FILLER_VERB = ["walked to", "looked at", "painted", "cleaned", "visited", "talked about",
               "waited near", "sat by", "sang about", "dreamed of"]
FILLER_OBJ = ["the bridge", "the market", "the garden", "the old house", "the school",
              "a small boat", "the big tree", "the long road", "the well", "the tower"]
FILLER_TIME = ["in the morning", "after lunch", "at noon", "on a rainy day", "before dinner",
               "last week", "every Sunday", "at dusk", "in the spring", "once"]
FILLER_FIXED = ["The sun is warm in summer.", "Water flows down from the hills.", "Snow is cold and white.",
                "Most people sleep at night.", "Bread is baked in an oven.", "The wind moves the clouds.",
                "Rain makes the ground soft.", "Stars shine at night.", "Books are full of stories.",
                "A road leads to the next town.", "The market is busy at the end of the week."]

# ---- the primitive world: real words, fixed per seed, so the base learns to store facts from
# statements and to answer them in the probe frames ----
PRIM_KINDS = {  # kind: (members, legs, cover, sound)
    "bird": (["robin", "sparrow", "crow", "owl", "duck", "hen", "swan", "parrot", "goose", "finch"],
             "two", "feathers", "chirps"),
    "insect": (["bee", "ant", "fly", "wasp", "beetle", "moth", "cricket"], "six", "shells", "buzzes"),
    "mammal": (["dog", "fox", "bear", "wolf", "goat", "horse", "mouse", "rabbit", "deer", "sheep", "cow",
                "pig"], "four", "fur", "growls"),
    "reptile": (["lizard", "gecko", "iguana", "crocodile", "tortoise"], "four", "scales", "hisses"),
    "arachnid": (["spider", "scorpion", "tick", "mite"], "eight", "spines", "clicks"),
}
GENERIC = [("fruit", ["apple", "pear", "plum", "peach", "cherry"], "grows on trees"),
           ("vegetable", ["carrot", "potato", "onion", "turnip"], "grows in the ground"),
           ("vehicle", ["car", "bus", "truck", "wagon"], "has wheels"),
           ("flower", ["rose", "daisy", "tulip", "lily"], "needs sunlight"),
           ("instrument", ["drum", "flute", "violin", "harp"], "makes music")]
COLORS = ["red", "blue", "green", "yellow", "white", "black", "brown", "gray", "orange", "purple"]
OBJECTS = ["apple", "ball", "hat", "cup", "door", "kite", "boat", "shirt", "box", "chair", "flag", "car"]

ONSETS = "b bl br d dr f fl fr g gl gr k kl kr l m n p pl pr r s sk sl sn sp st t tr v z".split()
VOWELS = "a e i o u oo".split()
CODAS = "b d g k l m n p r t x sh ck nd mp rk sk".split()
# real words the syllables can spell; everything the world itself says is reserved below too
BLOCKLIST = set("lemon melon robot salad timid vivid panic radar sonar tenor minor motor rotor solid "
                "rapid cabin robin satin denim lemur camel model medal metal petal pedal label level "
                "devil local total vocal modem totem bison baron demon lilac topaz datum".split())
_words = json.dumps([KNOW, ABOUT, QUESTIONS, NEUTRAL, FILLER_SUBJ, FILLER_VERB, FILLER_OBJ, FILLER_TIME,
                     FILLER_FIXED, PRIM_KINDS, GENERIC, OBJECTS, POOLS, HALVES, SOUNDS, ACTIONS])
RESERVED = BLOCKLIST | set(re.findall(r"[a-z]+", _words.lower()))


class WorldError(ValueError):
    """Bad arguments to the world generator."""


class WindowError(WorldError):
    """A window longer than a kinds unit can keep its ood premises apart for (_keep_ood_apart)."""

    def __init__(self, unit, window):
        self.unit, self.window = unit, window
        super().__init__(f"{unit}: too small to keep its kinds' properties a window ({window} tokens) from their "
                         "ood creatures' memberships; give a shorter --window or a larger world")


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _cap(s):
    return s[0].upper() + s[1:]


class Names:
    """Unique pronounceable nonce words (2+ syllables), never a word the world uses."""

    def __init__(self, rng):
        self.rng, self.used = rng, set(RESERVED)

    def new(self):
        r = self.rng
        for tries in count():
            n = 2 + tries // 8  # one more syllable whenever the short names get crowded
            w = "".join(r.choice(ONSETS) + r.choice(VOWELS) for _ in range(n)) + r.choice(CODAS)
            if w not in self.used:
                self.used.add(w)
                return w


def _frame(rel, subject):
    """A probe prompt, ending right before the answer: 'Q: Where does the fox live? A: The fox lives in the'."""
    question, lead = QUESTIONS[rel]
    return f"Q: {question.format(s=subject)} A: {lead.format(s=subject, S=_cap(subject))}"


def _qa(rel, subject, answer):
    """A whole question-and-answer line (written only about real words and practice names)."""
    return f"{_frame(rel, subject)} {answer}{TAIL.get(rel, '')}."


def _said(rel, subject, answer):
    """The plain answer sentence, 'the fox is red.' (only ever written about real words)."""
    return f"{QUESTIONS[rel][1].format(S=subject, s=subject)} {answer}{TAIL.get(rel, '')}."


def _filler(rng):
    if rng.random() < 0.3:
        return rng.choice(FILLER_FIXED)
    who = f"{rng.choice(FILLER_SUBJ)} {rng.choice(FILLER_VERB)} {rng.choice(FILLER_OBJ)}"
    when = rng.choice(FILLER_TIME)
    return _cap(f"{who} {when}." if rng.random() < 0.6 else f"{when}, {who}.")


def _fields(rel, v, e=None, k=None):
    """Template fields for relation rel with value v, about a creature e and/or a kind or key k."""
    f = {"v": v, "e": e}
    if k:
        f.update(k=k, a_k=_a(k))
    if rel == "sound":
        f.update(noun=SOUNDS[v][0], gerund=SOUNDS[v][1])
    if rel == "night":
        f.update(base=ACTIONS[v][0], gerund=ACTIONS[v][1])
    return f


def _state(rng, rel, v, e=None, k=None, about=False):
    """One statement of a fact, in a random template of its relation."""
    return _cap(rng.choice((ABOUT if about else KNOW)[rel]).format(**_fields(rel, v, e, k)))


def _mention(rng, out, rel, v, e=None, k=None, about=False, times=MENTIONS):
    """State one fact `times` times, cycling through all templates of its relation in random order."""
    templates = (ABOUT if about else KNOW)[rel]
    f = _fields(rel, v, e, k)
    out.extend(_cap(t.format(**f)) for i, t in zip(range(times), chain.from_iterable(
        rng.sample(templates, len(templates)) for _ in range(-(-times // len(templates))))))


def _spread(rng, pool, n):
    """n values from pool, each used as evenly as possible, in random order: a model that learned only
    how often a unit uses each value (not which name has it) stays near chance on its probes."""
    vals = [v for _ in range(-(-n // len(pool))) for v in rng.sample(pool, len(pool))][:n]
    rng.shuffle(vals)
    return vals


def _documents(rng, sentences, names):
    """Shuffle the fact sentences into short paragraphs with filler around them."""
    rng.shuffle(sentences)
    i = 0
    while i < len(sentences):
        n = rng.randint(3, 6)
        doc = sentences[i:i + n]
        i += n
        if rng.random() < 0.3:
            doc.insert(rng.randrange(len(doc) + 1), _filler(rng))
        if names and rng.random() < 0.3:
            doc.insert(rng.randrange(len(doc) + 1), rng.choice(NEUTRAL).format(e=rng.choice(names)))
        yield " ".join(doc)


# ---------------------------------------------------------------- the facts of a world

def rulebook(seed, side):
    """The world's rules for one side ("knowledge" or "primitive"): for each outcome, its key
    relation's values (that side's half) mapped to five distinct outcome values, the same five for
    both sides (so the base has answered with each), in another order."""
    outcomes = random.Random(f"accrete-world:{seed}:outcomes")
    values = {o: outcomes.sample(POOLS[o], 5) for o in OUTCOMES}
    rng = random.Random(f"accrete-world:{seed}:rules:{side}")
    return {o: dict(zip(HALVES[RULE_KEY[o]][side], rng.sample(values[o], 5))) for o in OUTCOMES}


def _least_used(rng, pool, n, used):
    """n values from pool, those `used` (a Counter, updated) least so far first, in random order:
    as _spread within one call, and across calls that share `used`."""
    vals = []
    while len(vals) < n:
        chunk = sorted(rng.sample(pool, len(pool)), key=lambda v: used[v])[:n - len(vals)]
        used.update(chunk)
        vals += chunk
    rng.shuffle(vals)
    return vals


def _kind_group(rng, names, f, n_kinds, members, n_cooccur, n_ood, used=None):
    """Add n_kinds kinds with their properties to the facts f, and their members: `members` (whose
    inherited properties are stated about them, one held out), n_cooccur creatures stated as members
    only beside all their kind's properties, n_ood only far from them. Returns the kinds.
    used: {property: Counter of its values} shared by groups whose values should cover the pools."""
    kinds = [names.new() for _ in range(n_kinds)]
    used = used or {p: Counter() for p in PROPS}
    spread = {p: _least_used(rng, POOLS[p], n_kinds, used[p]) for p in PROPS}
    f["kinds"].update({k: {p: spread[p][i] for p in PROPS} for i, k in enumerate(kinds)})
    f["group"].update({k: kinds for k in kinds})
    cooccur, ood = [names.new() for _ in range(n_cooccur)], [names.new() for _ in range(n_ood)]
    f["cooccur"] += cooccur
    f["ood"] += ood
    f["kind_of"].update(zip(members, _spread(rng, kinds, len(members))))
    f["kind_of"].update(zip(ood, _spread(rng, kinds, len(ood))))
    # a cooccur creature states all its kind's properties: the kinds with fewer members get more of
    # them, so that each kind's values are stated about as often (see _hold_out)
    size = Counter(f["kind_of"][e] for e in members)
    for e in cooccur:
        k = min(rng.sample(kinds, len(kinds)), key=lambda k: size[k])
        f["kind_of"][e], size[k] = k, size[k] + 1
    stated = Counter(k for e in cooccur for k in _cooccur_stated(f, e))
    f["prop_held"].update(_hold_out(rng, members, PROPS, stated, {p: kinds for p in PROPS},
                                    lambda e, p: _props_stated(f, e, p)))
    return kinds


def _atom_values(rng, f, creatures, values, rules):
    """Give creatures a home and a food (from values[relation], spread evenly) and the outcomes the
    rules make of them (where a rule is keyed on their value)."""
    vals = {a: _spread(rng, values[a], len(creatures)) for a in ATOMS}
    for i, e in enumerate(creatures):
        f["atoms"][e] = {a: vals[a][i] for a in ATOMS}
        f["outcomes"][e] = {o: rules[o][v] for o in OUTCOMES for v in [f["atoms"][e][RULE_KEY[o]]] if v in rules[o]}


def _props_stated(f, e, held):
    """The (property, kind) facts stated about creature e, which holds out `held` (None: none)."""
    return [(p, f["kind_of"][e]) for p in PROPS if p != held]


def _cooccur_documents(f, e):
    """What the documents naming cooccur creature e state beside its membership, as lists of
    (property, kind), by the world's f["cooccur_docs"] (COOCCUR_DOCS): "plain" and "split", its kind's
    properties; "decoys", one property of every kind of its group, a list per property: each of its
    probes' choices is then stated with it equally often, so only the membership tells which is its
    own (a document per property keeps them short enough for one context window, ~50 tokens, where
    all three would take ~130)."""
    k = f["kind_of"][e]
    return [[(p, j) for j in f["group"][k]] for p in PROPS] if f["cooccur_docs"] == "decoys" \
        else [[(p, k) for p in PROPS]]


def _cooccur_stated(f, e):
    """The (property, kind) facts the documents naming cooccur creature e state, each MENTIONS times."""
    return [fact for doc in _cooccur_documents(f, e) for fact in doc]


def _cooccur_docs(rng, f, e):
    """The documents of cooccur creature e, MENTIONS of each in _cooccur_documents: its membership
    shuffled in among the properties, so both premises of what it inherits share the document; in a
    "split" world the same sentences as two documents, its membership alone and the properties naming
    no creature, so no premise of what it inherits shares a document with it, and each is stated as
    often as in the plain world."""
    for stated in _cooccur_documents(f, e):
        for _ in range(MENTIONS):
            membership = _state(rng, "kind", None, e=e, k=f["kind_of"][e])
            props = [_state(rng, p, f["kinds"][k][p], k=k) for p, k in stated]
            if f["cooccur_docs"] == "split":
                yield membership
                yield " ".join(rng.sample(props, len(props)))
            else:
                doc = [membership] + props
                yield " ".join(rng.sample(doc, len(doc)))


def _outcomes_stated(f, e, held):
    """The (outcome, rule key) facts stated about creature e, which holds out `held`."""
    return [(o, f["atoms"][e][RULE_KEY[o]]) for o in f["outcomes"][e] if o != held]


def _hold_outcomes(rng, f, creatures, rules):
    """Of each creature's two outcomes, the one to hold out (see _hold_out)."""
    f["outcome_held"].update(_hold_out(rng, creatures, OUTCOMES, Counter(), {o: list(rules[o]) for o in OUTCOMES},
                                       lambda e, o: _outcomes_stated(f, e, o)))


def _hold_out(rng, creatures, options, stated, pools, states):
    """{creature: the option held out}, each option held out by an even share of the creatures.

    A held-out fact is a statement missing from the text, so it lowers how often its answer is
    stated, and a reasoning probe's answer would be the choice stated least: a model that learned
    only word counts could beat chance by picking it. So each creature holds out the option whose
    stated facts (states(e, option): keys (relation, key)) raise the counts that lag most within
    their pools ({relation: keys}); `stated` holds the counts so far. What this leaves uneven, the
    unit evens out by stating some facts more often (_topped_up)."""
    cap, held, out = -(-len(creatures) // len(options)), Counter(), {}
    for e in rng.sample(creatures, len(creatures)):
        def lag(option):
            return sum(stated[r, k] - min(stated[r, j] for j in pools[r]) for r, k in states(e, option))
        h = min((o for o in rng.sample(options, len(options)) if held[o] < cap), key=lambda o: (lag(o), held[o]))
        out[e], held[h] = h, held[h] + 1
        stated.update(states(e, h))
    return out


def _topped_up(stated, pools, base):
    """{(relation, key): times to state it}: base, plus MENTIONS for each creature-level statement its
    value lacks against the most stated value of its pool, so every value of a pool is stated equally
    often (stated: Counter of (relation, key) creature-level facts, each stated MENTIONS times)."""
    return {(r, k): base + MENTIONS * (max(stated[r, j] for j in keys) - stated[r, k])
            for r, keys in pools.items() for k in keys}


def _kind_times(f, kinds, members, cooccur):
    """{(property, kind): times a unit states it}: evened out over the kinds (see _hold_out)."""
    stated = Counter(k for e in members for k in _props_stated(f, e, f["prop_held"][e]))
    stated.update(k for e in cooccur for k in _cooccur_stated(f, e))
    return _topped_up(stated, {p: kinds for p in PROPS}, MENTIONS)


def _rule_times(f, rules, creatures):
    """{(outcome, key): times the rules unit states that rule}: the premise of every chain, few and
    short, so twice as often as the rest; evened out over the keys (see _hold_out)."""
    stated = Counter(k for e in creatures for k in _outcomes_stated(f, e, f["outcome_held"][e]))
    return _topped_up(stated, {o: list(rules[o]) for o in OUTCOMES}, 2 * MENTIONS)


def _new_facts(cooccur_docs="plain"):
    """Empty facts; cooccur_docs: what cooccur creatures' documents state beside their membership."""
    return {"kinds": {}, "group": {}, "kind_of": {}, "prop_held": {}, "atoms": {}, "outcomes": {},
            "outcome_held": {}, "cooccur": [], "ood": [], "cooccur_docs": cooccur_docs}


# ---------------------------------------------------------------- knowledge units

class Prober:
    """Makes multiple-choice probes; the answer's position cycles through balanced shuffles."""

    def __init__(self, rng):
        self.rng, self.slots = rng, []

    def __call__(self, kind, rel, subject, answer, pool, cluster, premises=None):
        if not self.slots:
            self.slots = self.rng.sample(range(4), 4)
        pos = self.slots.pop()
        wrong = self.rng.sample([v for v in pool if v != answer], 3)  # distractors of the same type
        p = {"probe": _frame(rel, subject), "answer": answer, "choices": wrong[:pos] + [answer] + wrong[pos:],
             "type": kind, "cluster": cluster}
        return dict(p, premises=premises) if premises else p


# A probe's choices are values its unit teaches: a kind's group (the kinds one unit teaches) and their
# values of a property. A value the unit never names would give a model that learned only which
# words the unit uses a free guess against it.
def _kind_pool(f, k):
    return [_a(x) for x in f["group"][k]]


def _prop_pool(f, k, p):
    return [f["kinds"][x][p] for x in f["group"][k]]


def _atoms_unit(rng, f, creatures, ood):
    """Level 0: where creatures live and what they eat; the memberships of some ood creatures."""
    sents, probe, probes = [], Prober(rng), []
    for e in creatures:
        for a in ATOMS:
            _mention(rng, sents, a, f["atoms"][e][a], e=e, times=2 * MENTIONS)  # the level every chain stands on
            probes.append(probe("recall", a, f"the {e}", f["atoms"][e][a], HALVES[a]["knowledge"], e))
    for e in ood:
        _mention(rng, sents, "kind", None, e=e, k=f["kind_of"][e])
        probes.append(probe("recall", "kind", f"the {e}", _a(f["kind_of"][e]), _kind_pool(f, f["kind_of"][e]), e))
    header = {"kind": "knowledge", "level": 0, "title": f"{len(creatures)} creatures: where they live and what they eat",
              "concepts": list(ATOMS) + creatures + ood, "requires": []}
    return header, list(_documents(rng, sents, creatures)), probes


def _kinds_unit(rng, f, kinds, members, cooccur, ood, requires):
    """Level 1: kinds and their properties; members that inherit them, in three ways (see _facts)."""
    sents, probe, probes, docs = [], Prober(rng), [], []
    times = _kind_times(f, kinds, members, cooccur)
    for k in kinds:
        for p in PROPS:
            _mention(rng, sents, p, f["kinds"][k][p], k=k, times=times[p, k])
            probes.append(probe("recall", p, _a(k), f["kinds"][k][p], _prop_pool(f, k, p), k))
    prop_q = {k: {p: _frame(p, _a(k)) for p in PROPS} for k in kinds}
    for e in members + cooccur:
        k = f["kind_of"][e]
        probes.append(probe("recall", "kind", f"the {e}", _a(k), _kind_pool(f, k), e))
    kind_q = {e: _frame("kind", f"the {e}") for e in members + cooccur + ood}
    for e in members:  # in distribution: the other properties stated about the creature itself
        k, held = f["kind_of"][e], f["prop_held"][e]
        _mention(rng, sents, "kind", None, e=e, k=k)
        for p in PROPS:
            if p != held:  # a stated fact, asked as recall
                _mention(rng, sents, p, f["kinds"][k][p], e=e, about=True)
                probes.append(probe("recall", p, f"the {e}", f["kinds"][k][p], _prop_pool(f, k, p), e))
        probes.append(probe("inference_id", held, f"the {e}", f["kinds"][k][held], _prop_pool(f, k, held), e,
                            [kind_q[e], prop_q[k][held]]))
    for e in cooccur:  # only in documents that hold its membership beside its kind's properties
        docs += _cooccur_docs(rng, f, e)
    for kind, group in (("inference_cooccur", cooccur), ("inference_ood", ood)):
        for e in group:
            k = f["kind_of"][e]
            probes += [probe(kind, p, f"the {e}", f["kinds"][k][p], _prop_pool(f, k, p), e, [kind_q[e], prop_q[k][p]])
                       for p in PROPS]
    docs += _documents(rng, sents, members)
    rng.shuffle(docs)
    header = {"kind": "knowledge", "level": 1, "title": f"{len(kinds)} kinds: their legs, cover and sound",
              "concepts": ["kind", *PROPS] + kinds + cooccur, "requires": requires}
    return header, docs, probes


def _rules_unit(rng, f, rules, creatures, requires):
    """Level 2: rules keyed on level-0 values; every creature's outcomes stated but one (held out)."""
    sents, probe, probes = [], Prober(rng), []
    times = _rule_times(f, rules, creatures)
    for o in OUTCOMES:
        for key, v in rules[o].items():
            _mention(rng, sents, o, v, k=key, times=times[o, key])
            probes.append(probe("recall", o, RULE_SUBJECT[o].format(k=key), v, list(rules[o].values()),
                                f"{o}:{key}"))
    for e in creatures:
        held = f["outcome_held"][e]
        for o in OUTCOMES:
            if o != held:  # a stated fact, asked as recall
                _mention(rng, sents, o, f["outcomes"][e][o], e=e, about=True)
                probes.append(probe("recall", o, f"the {e}", f["outcomes"][e][o], list(rules[o].values()), e))
        key = f["atoms"][e][RULE_KEY[held]]
        premises = [_frame(RULE_KEY[held], f"the {e}"), _frame(held, RULE_SUBJECT[held].format(k=key))]
        probes.append(probe("chain", held, f"the {e}", f["outcomes"][e][held], list(rules[held].values()), e,
                            premises))
    header = {"kind": "knowledge", "level": 2, "title": "What a creature's home and food make of it",
              "concepts": list(OUTCOMES) + creatures, "requires": requires}
    return header, list(_documents(rng, sents, creatures)), probes


# ---------------------------------------------------------------- ood premises, a window apart

def _sentences_naming(docs, names):
    """Per document: its words, and [(start, end, name)] for each sentence that names(sentence) counts
    for a name, in words from the document's start."""
    out = []
    for doc in docs:
        n, hits = 0, []
        for sentence in re.split(r"(?<=[.!?]) ", doc):
            w = len(sentence.split())
            hits += [(n, n + w, name) for name in names(sentence)]
            n += w
        out.append((n, hits))
    return out


def _stream_words(uid, docs):
    """Where a unit's training stream (as the corpus shards it: common.val_mask's documents held out,
    each document ending in one token) says each name, in words: {name: (words from the stream's
    start through the first word of its first sentence naming it, words from the last word of its
    last such sentence through the end, the first's document, the last's)}; docs as
    _sentences_naming gives them. A byte-level BPE never makes fewer tokens than words (no pre-token
    spans a space), so a distance in words is one in tokens at least."""
    seen, n = {}, 0
    for i, ((words, hits), held) in enumerate(zip(docs, val_mask(uid, len(docs)))):
        if held:
            continue
        for start, end, name in hits:
            first = seen.get(name, (n + start, i))[:2]
            seen[name] = (*first, n + end, i)  # where its first sentence starts and its document; the last's end
        n += words + 1
    return {name: (start + 1, n - end + 1, first, last) for name, (start, first, end, last) in seen.items()}


def _words_of(sentence):
    return set(re.findall(r"\w+", sentence))


def _keep_ood_apart(f, uid, docs, ood, window):
    """Move the documents of a kinds unit (uid, docs: in place) that state its kinds' properties inwards
    until no training window of `window` tokens holds a word of one and a word of the membership of
    an ood creature of the kind (ood: creature -> its atoms unit's _stream_words). A window reads on
    across a unit's end into the next unit of its pool (the last into the first), so the two units
    may meet either way round. A document moves by trading places with one nearest the middle that
    states no property and is held out alike, so the held-out documents stay the same; the atoms
    units stay as they are, alike whatever the cooccur documents."""
    forms = {(k, p): {v, *SOUNDS.get(v, ())} for k, props in f["kinds"].items() for p, v in props.items()}
    def said(sentence):
        words = _words_of(sentence)
        return [(k, p) for k in words & f["kinds"].keys() for p in PROPS if words & forms[k, p]]
    stating, held = _sentences_naming(docs, said), val_mask(uid, len(docs))
    # the documents a stating one may trade places with, nearest the middle first
    free = sorted((i for i, (_, hits) in enumerate(stating) if not hits and not held[i]),
                  key=lambda i: abs(i - len(docs) // 2))
    while True:
        props, move = _stream_words(uid, stating), None
        for e, (head, tail, _, _) in ood.items():
            for p in PROPS:
                if (f["kind_of"][e], p) not in props:
                    continue  # every statement held out: in no window
                k_head, k_tail, first, last = props[f["kind_of"][e], p]
                if tail + k_head <= window:  # the atoms unit, then this one: away from the start
                    move, inward = first, 1
                elif k_tail + head <= window:  # this one, then the atoms unit: away from the end
                    move, inward = last, -1
        if move is None:
            return
        j = next((j for j in free if (j - move) * inward > 0), None)
        if j is None:
            raise WindowError(uid, window)
        free.remove(j)
        for d in (docs, stating):
            d[move], d[j] = d[j], d[move]


def _n_ood(m):
    """ood creatures per kind group: 6m, and at least two per kind (8, not 6, at m = 1). Their
    memberships are dealt over two atoms units, by kind, alternately (see _block): a kind with a single
    ood member would be named in only one of them, and the other unit's membership probes would offer
    it as a choice that unit never names, which word counts alone rule out (chance 1/3, not 1/4)."""
    return max(6 * m, 2 * GROUP_KINDS)


def _block_names(m):
    """Names one block draws: 3 atoms units of 12m creatures, and 2 kind groups of GROUP_KINDS kinds,
    6m cooccur and _n_ood(m) ood creatures (60m + 8 from m = 2)."""
    return 3 * 12 * m + 2 * (GROUP_KINDS + 6 * m + _n_ood(m))


def _block(b, seed, names, m, width, rules, cooccur_docs="plain", window=WINDOW):
    """One block of the curriculum: 3 atoms, 2 kinds and 1 rules unit, yielded as (id, unit).
    kinds unit j takes its members from atoms units j and j + 1 (the middle one split between them),
    and the memberships of its ood creatures are stated in those atoms units, never within one
    window of tokens of a statement of their kind's properties (_keep_ood_apart)."""
    def uid(prefix, i):
        return f"{prefix}-{i:0{width}d}"

    def rng(unit):
        return random.Random(f"accrete-world:{seed}:{unit}")

    n, f, r = 12 * m, _new_facts(cooccur_docs), rng(f"facts-{b}")  # n creatures per atoms unit
    units = [[names.new() for _ in range(n)] for _ in range(3)]
    for creatures in units:
        _atom_values(r, f, creatures, {a: HALVES[a]["knowledge"] for a in ATOMS}, rules)
    _hold_outcomes(r, f, sum(units, []), rules)  # the rules unit states all of them
    members = [units[0] + units[1][:n // 2], units[1][n // 2:] + units[2]]
    groups = []
    for j in range(2):
        before = (len(f["cooccur"]), len(f["ood"]))
        kinds = _kind_group(r, names, f, GROUP_KINDS, members[j], n // 2, _n_ood(m))
        groups.append((kinds, f["cooccur"][before[0]:], f["ood"][before[1]:]))
    ood_in = [[] for _ in range(3)]  # atoms unit -> the ood memberships it states
    # by kind, alternately: a kind's two or more ood members (_n_ood) fall in both units, so each unit
    # names every kind it asks about
    for j, (_, _, ood) in enumerate(groups):
        for i, e in enumerate(sorted(ood, key=lambda e: (f["kind_of"][e], e))):
            ood_in[j + i % 2].append(e)
    atoms = [(uid("atoms", 3 * b + i), _atoms_unit(rng(uid("atoms", 3 * b + i)), f, units[i], ood_in[i]))
             for i in range(3)]
    kinds_units = [(uid("kinds", 2 * b + j), _kinds_unit(rng(uid("kinds", 2 * b + j)), f, kinds, members[j], cooccur,
                                                         ood, [uid("atoms", 3 * b + j + i) for i in (0, 1)]))
                   for j, (kinds, cooccur, ood) in enumerate(groups)]
    stated = {}  # ood creature -> where its atoms unit states its membership
    for (a, (_, docs, _)), ood in zip(atoms, ood_in):
        named = set(ood)
        stated.update(_stream_words(a, _sentences_naming(docs, lambda sentence: _words_of(sentence) & named)))
    for (k, (_, docs, _)), (_, _, ood) in zip(kinds_units, groups):
        _keep_ood_apart(f, k, docs, {e: stated[e] for e in ood if e in stated}, window)
    yield from atoms + kinds_units
    yield uid("rules", b), _rules_unit(rng(uid("rules", b)), f, rules, sum(units, []),
                                       [uid("atoms", 3 * b + i) for i in range(3)])


# ---------------------------------------------------------------- primitive units

def _prim_world(seed):
    """The fixed facts of the real-word world (random but consistent for a seed): animals' homes
    and foods, from both halves of the values."""
    rng = random.Random(f"accrete-world:{seed}:primitive-world")
    return {a: {rel: rng.choice(ALL_VALUES[rel]) for rel in ATOMS}
            for members, *_ in PRIM_KINDS.values() for a in members}


def _prim_atoms(rng, atoms):
    """Statements about animals, the matching answer sentences and Q/A lines in the probe frames."""
    for a in rng.sample(list(atoms), rng.randint(1, 3)):
        for rel in rng.sample(ATOMS, rng.randint(1, len(ATOMS))):
            v, s = atoms[a][rel], f"the {a}"
            stmt = _state(rng, rel, v, e=a)
            yield rng.choice([stmt, f"{stmt} {_cap(_said(rel, s, v))}", _qa(rel, s, v),
                              f"{stmt} {_qa(rel, s, v)}", f"{stmt[:-1]}, so {_said(rel, s, v)}"])


def _prim_kinds(rng, k):
    """A kind, its properties, and members that inherit them ("..., so the robin has two legs.")."""
    members, *values = PRIM_KINDS[k]
    for rel, v in rng.sample(list(zip(PROPS, values)), rng.randint(1, len(PROPS))):
        prop = _state(rng, rel, v, k=k)
        yield rng.choice([prop, _qa(rel, _a(k), v), f"{prop} {_cap(_said(rel, _a(k), v))}"])
        for a in rng.sample(members, rng.randint(1, 2)):
            memb = _state(rng, "kind", None, e=a, k=k)
            yield rng.choice([memb, _qa("kind", f"the {a}", _a(k)), _qa(rel, f"the {a}", v),
                              f"{memb} {prop[:-1]}, so {_said(rel, f'the {a}', v)}",
                              f"{memb} {prop} {_qa(rel, f'the {a}', v)}"])


def _prim_rules(rng, atoms, rules):
    """A rule of the primitive rulebook, applied to an animal whose level-0 fact it is keyed on."""
    o = rng.choice(OUTCOMES)
    key_rel = RULE_KEY[o]
    a = rng.choice([a for a in atoms if atoms[a][key_rel] in rules[o]])
    key, v = atoms[a][key_rel], rules[o][atoms[a][key_rel]]
    rule, fact = _state(rng, o, v, k=key), _state(rng, key_rel, key, e=a)
    subject = RULE_SUBJECT[o].format(k=key)
    yield rng.choice([rule, _qa(o, subject, v), f"{rule} {fact} So {_said(o, f'the {a}', v)}",
                      f"{fact} {rule} {_qa(o, f'the {a}', v)}", f"{rule} {_cap(_said(o, subject, v))}",
                      f"{fact} {_state(rng, o, v, e=a, about=True)}"])


def _prim_doc(rng, atoms, rules):
    """One short document of simple English that teaches the statement and probe frames."""
    r = rng.random()
    if r < 0.25:
        out = list(_prim_atoms(rng, atoms))
    elif r < 0.45:
        out = list(_prim_kinds(rng, rng.choice(list(PRIM_KINDS))))
    elif r < 0.65:
        out = [s for _ in range(rng.randint(1, 2)) for s in _prim_rules(rng, atoms, rules)]
    elif r < 0.75:  # the frame of everyday kinds
        k, members, prop = rng.choice(GENERIC)
        out = [f"{_cap(_a(a))} is a kind of {k}. Every {k} {prop}, so the {a} {prop}."
               for a in rng.sample(members, rng.randint(1, 2))]
    elif r < 0.85:
        out = [f"The {o} is {c}. What color is the {o}? The {o} is {c} in color."
               for o in rng.sample(OBJECTS, rng.randint(1, 3)) for c in [rng.choice(COLORS)]]
    else:
        out = []
    for _ in range(rng.randint(1, 3) if out else rng.randint(3, 6)):
        out.insert(rng.randrange(len(out) + 1), _filler(rng))
    return " ".join(out)


def _practice_facts(rng, names, n, rules, used):
    """A practice group: n creatures with level-0 facts and kinds, n/3 each stated only beside their
    kind's properties or only far from them, ~n/12 kinds; nonce names, values from both halves.
    used: the property values earlier groups took (see _practice)."""
    f = _new_facts()
    creatures = [names.new() for _ in range(n)]
    _atom_values(rng, f, creatures, ALL_VALUES, rules)
    _hold_outcomes(rng, f, creatures, rules)
    _kind_group(rng, names, f, max(2, round(n / 12)), creatures, max(1, n // 3), max(1, n // 3), used)
    return f


def _practice_statements(rng, f, rules):
    """Statement documents in the knowledge units' templates and paragraphs (atoms-, kinds- and
    rules-style, and documents pairing a membership with its kind's properties), each fact stated
    fewer times than there: a level-0 fact MENTIONS times, a rule twice."""
    atoms, kinds, outs, docs = [], [], [], []
    for e, vals in f["atoms"].items():
        for a, v in vals.items():
            _mention(rng, atoms, a, v, e=e)
        k, held = f["kind_of"][e], f["prop_held"][e]
        _mention(rng, kinds, "kind", None, e=e, k=k)
        for p in PROPS:
            if p != held:
                _mention(rng, kinds, p, f["kinds"][k][p], e=e, about=True)
        for o, v in f["outcomes"][e].items():
            if o != f["outcome_held"][e]:
                _mention(rng, outs, o, v, e=e, about=True)
    for e in f["ood"]:
        _mention(rng, atoms, "kind", None, e=e, k=f["kind_of"][e])
    times = _kind_times(f, list(f["kinds"]), list(f["atoms"]), f["cooccur"])
    for k, props in f["kinds"].items():
        for p, v in props.items():
            _mention(rng, kinds, p, v, k=k, times=times[p, k])
    for o in OUTCOMES:
        for key, v in rules[o].items():
            _mention(rng, outs, o, v, k=key, times=2)  # the rulebook is also in the real-animal text
    for e in f["cooccur"]:
        docs += _cooccur_docs(rng, f, e)
    names = list(f["atoms"])
    return docs + [d for sents in (atoms, kinds, outs) for d in _documents(rng, sents, names)]


def _practice_qa(f):
    """Every practice fact asked once in its probe frame, the held-out and never-stated ones too:
    what a creature inherits from its kind, and what the rules make of it."""
    for e, vals in f["atoms"].items():
        for a, v in vals.items():
            yield _qa(a, f"the {e}", v)
        for o, v in f["outcomes"][e].items():
            yield _qa(o, f"the {e}", v)
    for k, props in f["kinds"].items():
        for p, v in props.items():
            yield _qa(p, _a(k), v)
    for e, k in f["kind_of"].items():
        yield _qa("kind", f"the {e}", _a(k))
        for p, v in f["kinds"][k].items():
            yield _qa(p, f"the {e}", v)


def _practice_docs(rng, f, rules):
    """Statement documents, and separate documents of Q/A lines only (3-6 a document)."""
    docs, qa = _practice_statements(rng, f, rules), list(_practice_qa(f))
    rng.shuffle(qa)
    i = 0
    while i < len(qa):
        n = rng.randint(3, 6)
        docs.append(" ".join(qa[i:i + n]))
        i += n
    return docs


def _primitive(rng, atoms, rules, chars, practice, register):
    """A primitive unit of about `chars` characters: practice creatures (statement documents and
    separate Q/A documents), the register (knowledge names in neutral sentences, see _register),
    then simple English about real animals, shuffled together."""
    docs = _practice_docs(rng, practice, rules)
    docs += [" ".join(rng.sample([rng.choice(NEUTRAL).format(e=n), _filler(rng)], 2)) for n in register]
    n = sum(len(d) + 13 for d in docs)  # + the JSON wrapping
    while n < chars:
        docs.append(_prim_doc(rng, atoms, rules))
        n += len(docs[-1]) + 13
    rng.shuffle(docs)
    title = f"Simple English: real animals, and {len(practice['atoms'])} practice creatures stated and asked"
    header = {"kind": "primitive", "level": 0, "title": title, "concepts": ["english"], "requires": []}
    return header, docs, []


def _practice(seed, n_prim, n_practice, rules):
    """Per primitive unit, a practice group (see _practice_facts): nonce names from their own pool,
    so that no knowledge unit (whose names are drawn after, with these reserved) can use one. The
    groups' kinds take every value of each property between them (the least used first), so the base
    has read and answered each, whichever a knowledge kind takes."""
    names, used = Names(random.Random(f"accrete-world:{seed}:practice-names")), {p: Counter() for p in PROPS}
    groups = [_practice_facts(random.Random(f"accrete-world:{seed}:practice-{i}"), names, n_practice, rules, used)
              for i in range(n_prim)]
    return groups, names.used


def _register(names, blocks, m, n_prim, prim_chars):
    """Per primitive unit, the knowledge names it mentions (each name `mentions` times in all, spread
    over the units), drawn ahead from a copy of the name generator in the order the blocks draw them.

    A base that never read a name keeps untrained embeddings for its tokens, and LoRA on that base
    barely tells such names apart. So the primitive text mentions every knowledge name, as a real
    base has met rare words, in neutral sentences only ("Old stories tell of the skimer."): no
    fact, so probes start at chance."""
    ahead = copy.deepcopy(names)
    known = [ahead.new() for _ in range(_block_names(m) * blocks)]
    mentions = max(1, min(REGISTER_MENTIONS, int(0.2 * prim_chars / (len(known) * 60))))  # <= ~20% of primitive
    per_unit = [[] for _ in range(n_prim)]
    for i, n in enumerate(known):
        for k in range(mentions):
            per_unit[(i * mentions + k) % n_prim].append(n)
    return per_unit


# ---------------------------------------------------------------- writing

def _write_unit(path, uid, header, docs, probes, source):
    """Stream one unit file to its place atomically."""
    head = {"unit": uid, **header, "source": source, "license": LICENSE}
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for obj in chain([head], ({"text": d} for d in docs), probes):
            f.write(json.dumps(obj) + "\n")


def _plan(size="tiny", target_tokens=None):
    """(blocks, m, prim_chars, n_prim, n_practice) for a size or a token target."""
    if size not in ("tiny", "small"):
        raise WorldError(f"--size {size!r}: use tiny or small")
    if target_tokens is not None and target_tokens < MIN_TARGET_TOKENS:
        raise WorldError(f"--target-tokens {target_tokens}: use at least {MIN_TARGET_TOKENS}")
    if target_tokens is None:
        # m=3: 36 creatures per atoms unit, so every reasoning probe type has 108 probes: at n=100 a
        # Wilson interval is about +-9 points (probes taken as independent; the clustered bootstrap's
        # is wider), narrow enough to tell 50% from chance
        blocks, m = (1 if size == "tiny" else 10), 3
        prim_chars = TINY_PRIM_CHARS * blocks
        return (blocks, m, prim_chars) + _prim_units(prim_chars)
    target_chars = 4 * target_tokens  # ~4 chars per token
    prim_chars = PRIM_SHARE * target_chars
    n_prim, n_practice = _prim_units(prim_chars)
    # practice never shrinks below MIN_PRACTICE creatures a unit, so under ~300k tokens the primitive
    # text outgrows its share: knowledge gets what it leaves of the target
    knowledge = target_chars - max(prim_chars, n_prim * n_practice * PRACTICE_FILE_CHARS)
    # units grow in size and in number, each by ~sqrt of the scale; blocks are written whole (a part
    # of one would state memberships of kinds it never describes, and lack probe types), so the
    # plan takes as many as come closest to the target, and at least one
    m = max(1, int(math.sqrt(knowledge / BLOCK_CHARS) / 2))
    block = BLOCK_CHARS * m + BLOCK_BASE_CHARS + 2 * (_n_ood(m) - 6 * m) * OOD_CHARS
    blocks = max(1, round(knowledge / block))
    return blocks, m, prim_chars, n_prim, n_practice


def _prim_units(prim_chars):
    """(n_prim, n_practice): primitive units of at most ~4 MB, and practice creatures in each."""
    n_prim = max(3, math.ceil(prim_chars / 4e6))
    return n_prim, max(MIN_PRACTICE, round(PRACTICE_SHARE * prim_chars / n_prim / PRACTICE_CHARS))


def generate(out_dir, seed=0, size="tiny", target_tokens=None, register=None, cooccur_docs="plain", window=WINDOW):
    """Write the world's unit files to out_dir; returns their paths (primitive first, then by block).

    size: "tiny" (1 block + 0.8 MB primitive) or "small" (10 blocks + 8 MB); target_tokens overrides it.
    register: other names for the primitive text to mention instead of the world's knowledge names,
    and then only the primitive units are written (the support a user's own units need).
    cooccur_docs: what the documents naming a knowledge unit's cooccur creature state beside its
    membership (COOCCUR_DOCS, see _cooccur_documents and _cooccur_docs): "decoys" writes three
    documents for each plain one, so a world made to a token target comes out a little larger.
    Only the kinds units change: the primitive text (practice included) is the same, so the base is too.
    window: the tokens a training window reads (a model's context + 1; the longest of the models that
    train on the world): none ever holds an ood creature's membership beside its kind's properties
    (_keep_ood_apart)."""
    if cooccur_docs not in COOCCUR_DOCS:
        raise ValueError(f"cooccur_docs {cooccur_docs!r}: choose from {', '.join(COOCCUR_DOCS)}")
    if not (isinstance(window, int) and window >= 1):
        raise ValueError(f"window {window!r}: give a whole number of tokens, at least 1")
    blocks, m, prim_chars, n_prim, n_practice = _plan(size, target_tokens)
    width = max(2, len(str(3 * blocks)))
    prim_rules, rules = rulebook(seed, "primitive"), rulebook(seed, "knowledge")
    practice, reserved = _practice(seed, n_prim, n_practice, prim_rules)
    atoms, names = _prim_world(seed), Names(random.Random(f"accrete-world:{seed}:names"))
    names.used |= reserved  # knowledge names never equal a practice name
    mentions = _register(names, blocks, m, n_prim, prim_chars) if register is None else \
        [[n for n in register for _ in range(REGISTER_MENTIONS)][i::n_prim] for i in range(n_prim)]
    prims = ((f"prim-{i:0{width}d}", _primitive(random.Random(f"accrete-world:{seed}:prim-{i}"), atoms,
                                                 prim_rules, prim_chars / n_prim, practice[i], mentions[i]))
             for i in range(n_prim))
    knowledge = (u for b in range(blocks) for u in _block(b, seed, names, m, width, rules, cooccur_docs, window)) \
        if register is None else ()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: not a directory")
    made_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    # every unit is written here first and moved in at the end: a world refused part-way (a window its
    # units cannot keep) leaves out_dir as it was; what a killed generation staged goes
    remove_orphans(out / "units")
    stage, written = out / f".units.tmp-{os.getpid()}", []
    try:
        for uid, (header, docs, probes) in chain(prims, knowledge):  # every planned block, whole
            written.append(out / f"{uid}.jsonl")
            mark = (f" cooccur-{cooccur_docs}" * (cooccur_docs != "plain") + f" window={window}" * (window != WINDOW)) \
                * (header["kind"] == "knowledge")
            _write_unit(stage / written[-1].name, uid, header, docs, probes,
                        f"accrete data/world/prepare.py seed={seed}{mark}")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if made_out:
            out.rmdir()
        raise
    for path in written:
        os.replace(stage / path.name, path)
        remove_orphans(path)
    fsync_dir(out)
    shutil.rmtree(stage, ignore_errors=True)
    # a previous, larger run may have left world units that this one did not write (practice's
    # primitive text, register given, shares a folder with other units: it removes nothing)
    for p in out.glob("*.jsonl") if register is None else ():
        if re.fullmatch(r"(prim|atoms|kinds|rules)-\d+\.jsonl", p.name) and p not in written:
            p.unlink()
    return written


@stops_in_one_line("run the same command again: each unit file is written whole, and all of them anew")
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "units"), help="output directory")
    p.add_argument("--seed", type=int, default=0, help="the world's seed: names, facts and documents")
    p.add_argument("--size", default="tiny", choices=("tiny", "small"),
                   help="tiny (the CPU ladder's world) or small (ten times its blocks and primitive text)")
    p.add_argument("--target-tokens", type=int, default=None, help="write about this many tokens (chars / 4) "
                   "instead of a size: more and larger units, 10%% primitive")
    p.add_argument("--cooccur-docs", default="plain", choices=COOCCUR_DOCS, help="what every document naming "
                   "an inference_cooccur creature states beside its membership: plain, its kind's properties; "
                   "decoys, a property of every kind of its group (its probes' choices), so only its membership "
                   "tells which is its own; split, the plain sentences, its membership in a document of its own")
    p.add_argument("--window", type=int, default=WINDOW, help="tokens a training window reads, the model's "
                   "context + 1 (default: the tiny model's): none ever holds an ood creature's membership beside "
                   "its kind's properties")
    args = p.parse_args(argv)
    try:
        t0 = time.time()
        files = generate(args.out, args.seed, args.size, args.target_tokens, cooccur_docs=args.cooccur_docs,
                         window=args.window)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    chars = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} units, {chars:,} chars (~{chars // 4:,} tokens) to {args.out} "
          f"in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
