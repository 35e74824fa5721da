"""Generate the default world: a synthetic curriculum of invented creatures, kinds and rules.

Writes unit files (the format in the repository's README) whose facts no base model can know:
entity, kind and state names are nonce words, so every probe starts at chance. Deterministic;
stdlib only (and the repository's common.py).
"""
import argparse
import copy
import json
import math
import random
import re
import sys
import time
from itertools import chain, count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: common.py
from common import atomic_path  # noqa: E402

LICENSE = "CC0-1.0"
MENTIONS = 10       # times each fact is stated (cycling through all of its templates)
TINY_PRIM_CHARS = 800_000
BLOCK_CHARS = 145_000  # ~file chars of one block with m=1 (3 atoms + 2 kinds + 1 rules unit)
PRIM_SHARE = 0.1      # primitive share of the corpus under --target-tokens
PRACTICE_SHARE = 0.8   # share of each primitive unit given to practice creatures (the rest: real words)
PRACTICE_MENTIONS = 6  # each practice fact stated once in each of its 6 templates
REGISTER_MENTIONS = 12  # neutral mentions of each knowledge name in the primitive text (fewer at scale)
PRACTICE_CHARS = 3300  # ~file chars per practice creature (its and its share of kinds' and states'
                       # statements and Q/A lines), to size the practice set of a primitive unit

# ---- closed value sets (real words: the names are nonce, the values need not be) ----
COLORS = ["red", "blue", "green", "yellow", "white", "black", "brown", "gray", "orange", "purple"]
HOMES = ["cave", "forest", "river", "hill", "marsh", "meadow", "desert", "lake", "swamp", "valley"]
FOODS = ["berries", "seeds", "fish", "leaves", "roots", "honey", "worms", "mushrooms", "nuts", "grass"]
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
TRIGGERS = [("gets wet", "get wet", "getting wet"), ("hears thunder", "hear thunder", "hearing thunder"),
            ("sees the moon", "see the moon", "seeing the moon"),
            ("smells smoke", "smell smoke", "smelling smoke"),
            ("touches snow", "touch snow", "touching snow"),
            ("feels the wind", "feel the wind", "feeling the wind")]
POOLS = {"color": COLORS, "home": HOMES, "food": FOODS, "legs": LEGS, "cover": COVERS,
         "sound": list(SOUNDS), "act": list(ACTIONS), "chain": list(ACTIONS)}

# ---- how facts are stated in documents: at least 4 templates per relation. None of them
# contains a probe question or a probe's "lead + answer" (e.g. "The blick is red"), so a recall
# probe asks in a phrasing the knowledge documents never use. ----
KNOW = {
    "color": ["The {e} has a {v} coat.", "You can spot the {e} by its {v} color.",
              "Look for the {v} body of the {e}.", "Anyone who meets the {e} sees that it is {v}.",
              "{v} is the color of the {e}.", "The {e} wears {v} all over."],
    "home": ["The home of the {e} is the {v}.", "The {e} makes its home in the {v}.",
             "Every night the {e} goes back to the {v}.", "In the {v} you will find the {e}.",
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
              "Each {k} calls to its friends with a {noun}.", "At night every {k} starts {gerund}.",
              "A loud {noun} means {a_k} is near.", "If you hear {gerund} in the grass, {a_k} is close by."],
    "rule": ["When {a_k} {t3}, it turns {v}.", "{a_k} that {t3} soon grows {v}.",
             "{tger} makes any {k} {v}.", "Let {a_k} {tbase} and it will be {v}.",
             "Nothing turns {a_k} {v} faster than {tger}.", "Each time {a_k} {t3}, it ends up {v}."],
    "act": ["Anything that is {st} starts {gerund}.", "{a_st} creature cannot help but {base}.",
            "Being {st} makes a creature {base}.", "Any creature that turns {st} will {base} right away.",
            "{st} creatures spend the day {gerund}.", "Once a creature is {st}, it begins to {base}."],
}
# ---- how probes ask: (question, lead); the prompt ends right before the answer. {s} is the
# subject ("the blick", "a florp", "a belork creature"). Primitive text uses these frames with
# real words and with practice names, never with a knowledge unit's names. ----
QUESTIONS = {
    "color": ("What color is {s}?", "{S} is"), "home": ("Where does {s} live?", "{S} lives in the"),
    "food": ("What does {s} eat?", "{S} eats"), "kind": ("What kind of creature is {s}?", "{S} is"),
    "legs": ("How many legs does {s} have?", "{S} has"), "cover": ("What covers {s}?", "{S} is covered in"),
    "sound": ("What sound does {s} make?", "{S}"), "rule": ("What happens when {s} {t3}?", "{S} becomes"),
    "act": ("What does {s} do?", "{S}"), "chain": ("{S} {t3}. What does {s} do next?", "{S}"),
}
TAIL = {"legs": " legs"}  # what a full answer sentence adds after the answer word
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
PRIM_STATES = {"cold": "shivers", "sleepy": "sleeps", "happy": "sings", "scared": "hides",
               "hungry": "digs", "calm": "swims", "tired": "sleeps", "angry": "jumps"}
GENERIC = [("fruit", ["apple", "pear", "plum", "peach", "cherry"], "grows on trees"),
           ("vegetable", ["carrot", "potato", "onion", "turnip"], "grows in the ground"),
           ("vehicle", ["car", "bus", "truck", "wagon"], "has wheels"),
           ("flower", ["rose", "daisy", "tulip", "lily"], "needs sunlight"),
           ("instrument", ["drum", "flute", "violin", "harp"], "makes music")]
OBJECTS = ["apple", "ball", "hat", "cup", "door", "kite", "boat", "shirt", "box", "chair", "flag", "car"]

ONSETS = "b bl br d dr f fl fr g gl gr k kl kr l m n p pl pr r s sk sl sn sp st t tr v z".split()
VOWELS = "a e i o u oo".split()
CODAS = "b d g k l m n p r t x sh ck nd mp rk sk".split()
# real words the syllables can spell; everything the world itself says is reserved below too
BLOCKLIST = set("lemon melon robot salad timid vivid panic radar sonar tenor minor motor rotor solid "
                "rapid cabin robin satin denim lemur camel model medal metal petal pedal label level "
                "devil local total vocal modem totem bison baron demon lilac topaz datum".split())
_words = json.dumps([KNOW, QUESTIONS, NEUTRAL, FILLER_SUBJ, FILLER_VERB, FILLER_OBJ, FILLER_TIME,
                     FILLER_FIXED, PRIM_KINDS, PRIM_STATES, GENERIC, OBJECTS, POOLS, TRIGGERS, SOUNDS, ACTIONS])
RESERVED = BLOCKLIST | set(re.findall(r"[a-z]+", _words.lower()))


class WorldError(ValueError):
    """Bad arguments to the world generator."""


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _cap(s):
    return s[0].upper() + s[1:]


def _fill(template, fields):
    return _cap(template.format(**fields))


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


class Prober:
    """Makes multiple-choice probes; the answer's position cycles through balanced shuffles."""

    def __init__(self, rng):
        self.rng, self.slots = rng, []

    def __call__(self, kind, rel, subject, answer, pool, **fields):
        if not self.slots:
            self.slots = self.rng.sample(range(4), 4)
        pos = self.slots.pop()
        wrong = self.rng.sample([v for v in pool if v != answer], 3)  # distractors of the same type
        return {"probe": _frame(rel, subject, **fields), "answer": answer,
                "choices": wrong[:pos] + [answer] + wrong[pos:], "type": kind}


def _frame(rel, subject, **fields):
    """A probe prompt, ending right before the answer: 'Q: What color is the fox? A: The fox is'."""
    f = dict(fields, s=subject, S=_cap(subject))
    question, lead = QUESTIONS[rel]
    return f"Q: {question.format(**f)} A: {lead.format(**f)}"


def _qa(rel, subject, answer, **fields):
    """A whole question-and-answer line (written only about real words and practice names)."""
    return f"{_frame(rel, subject, **fields)} {answer}{TAIL.get(rel, '')}."


def _said(rel, subject, answer, **fields):
    """The plain answer sentence, 'the fox is red.' (only ever written about real words)."""
    return f"{QUESTIONS[rel][1].format(S=subject, **fields)} {answer}{TAIL.get(rel, '')}."


def _filler(rng):
    if rng.random() < 0.3:
        return rng.choice(FILLER_FIXED)
    who = f"{rng.choice(FILLER_SUBJ)} {rng.choice(FILLER_VERB)} {rng.choice(FILLER_OBJ)}"
    when = rng.choice(FILLER_TIME)
    return _cap(f"{who} {when}." if rng.random() < 0.6 else f"{when}, {who}.")


def _fields(k=None, t=None, rel=None, v=None, **extra):
    """Template fields for a kind k, a trigger t and a value v of relation rel."""
    f = dict(extra, v=v)
    if k:
        f.update(k=k, a_k=_a(k))
    if t:
        f.update(t3=t[0], tbase=t[1], tger=t[2])
    if rel == "sound":
        f.update(noun=SOUNDS[v][0], gerund=SOUNDS[v][1])
    if rel == "act":
        f.update(base=ACTIONS[v][0], gerund=ACTIONS[v][1], a_st=_a(f["st"]))
    return f


# ---------------------------------------------------------------- knowledge units

def _spread(rng, pool, n):
    """n values from pool, each used as evenly as possible, in random order: a model that learned only
    how often a unit uses each value (not which name has it) stays near chance on its probes."""
    vals = [v for _ in range(-(-n // len(pool))) for v in rng.sample(pool, len(pool))][:n]
    rng.shuffle(vals)
    return vals


def _mention(rng, out, rel, fields, times):
    """State one fact `times` times, cycling through all templates of its relation in random order."""
    templates = rng.sample(KNOW[rel], len(KNOW[rel]))
    out.extend(_fill(templates[i % len(templates)], fields) for i in range(times))


def _documents(rng, sentences, names):
    """Shuffle the fact sentences into short paragraphs with filler around them."""
    rng.shuffle(sentences)
    i = 0
    while i < len(sentences):
        n = rng.randint(3, 6)
        doc = sentences[i:i + n]
        i += n
        for _ in range(rng.randint(1, 2)):
            doc.insert(rng.randrange(len(doc) + 1), _filler(rng))
        if rng.random() < 0.3:
            doc.insert(rng.randrange(len(doc) + 1), rng.choice(NEUTRAL).format(e=rng.choice(names)))
        yield " ".join(doc)


def _atoms(rng, names, m):
    """Level 0: 8m creatures, each with a color, a home and a food; recall probes only."""
    ents = [names.new() for _ in range(8 * m)]
    sents, probe, probes = [], Prober(rng), []
    spread = {rel: _spread(rng, POOLS[rel], len(ents)) for rel in ("color", "home", "food")}
    for i, e in enumerate(ents):
        for rel, pool in (("color", COLORS), ("home", HOMES), ("food", FOODS)):
            v = spread[rel][i]
            _mention(rng, sents, rel, {"e": e, "v": v}, MENTIONS)
            probes.append(probe("recall", rel, f"the {e}", v, pool))
    header = {"kind": "knowledge", "level": 0, "title": f"{len(ents)} creatures: color, home and food",
              "concepts": ["color", "home", "food"] + ents, "requires": []}
    return header, _documents(rng, sents, ents), probes, ents


def _kinds(rng, names, m, members, requires):
    """Level 1: 4m kinds with legs, cover and sound; members inherit them (inference probes)."""
    kinds = [names.new() for _ in range(4 * m)]
    spread = {rel: _spread(rng, POOLS[rel], len(kinds)) for rel in ("legs", "cover", "sound")}
    props = {k: {rel: spread[rel][i] for rel in spread} for i, k in enumerate(kinds)}
    members = rng.sample(members, len(members))
    kind_of = {e: kinds[i % len(kinds)] for i, e in enumerate(members)}  # 3 members per kind
    sents, probe, probes = [], Prober(rng), []
    for k, rels in props.items():
        for rel, v in rels.items():
            _mention(rng, sents, rel, _fields(k, rel=rel, v=v), MENTIONS)
            probes.append(probe("recall", rel, _a(k), v, POOLS[rel]))
    for e, k in kind_of.items():
        _mention(rng, sents, "kind", _fields(k, e=e), MENTIONS)
        probes.append(probe("recall", "kind", f"the {e}", _a(k), [_a(other) for other in kinds]))
        for rel, v in props[k].items():  # implied by "e is a k" + "every k ...", never stated
            probes.append(probe("inference", rel, f"the {e}", v, POOLS[rel]))
    header = {"kind": "knowledge", "level": 1, "title": f"{len(kinds)} kinds: legs, cover and sound",
              "concepts": ["kind", "legs", "cover", "sound"] + kinds, "requires": requires}
    return header, _documents(rng, sents, members), probes, kind_of


def _rules(rng, names, m, kind_of, requires):
    """Level 2: per kind, two triggers that make it a (nonce) state; each state leads to an action."""
    kinds = list(dict.fromkeys(kind_of.values()))
    states = [names.new() for _ in range(6 * m)]
    act = dict(zip(states, _spread(rng, POOLS["act"], len(states))))
    made = iter(_spread(rng, states, 2 * len(kinds)))
    rules = {k: {t: next(made) for t in rng.sample(TRIGGERS, 2)} for k in kinds}
    sents, probe, probes = [], Prober(rng), []
    for k, by_trigger in rules.items():
        for t, st in by_trigger.items():
            _mention(rng, sents, "rule", _fields(k, t, v=st), MENTIONS)
            probes.append(probe("recall", "rule", _a(k), st, states, t3=t[0]))
    for st, a in act.items():
        _mention(rng, sents, "act", _fields(rel="act", v=a, st=st), MENTIONS)
        probes.append(probe("recall", "act", f"{_a(st)} creature", a, POOLS["act"]))
    for e, k in kind_of.items():
        # membership is restated here, so applying a rule is one step within the unit
        _mention(rng, sents, "kind", _fields(k, e=e), MENTIONS // 2)
        for t, st in rules[k].items():
            probes.append(probe("inference", "rule", f"the {e}", st, states, t3=t[0]))
        t, st = next(iter(rules[k].items()))  # two steps: trigger -> state -> action
        probes.append(probe("chain", "chain", f"the {e}", act[st], POOLS["chain"], t3=t[0]))
    header = {"kind": "knowledge", "level": 2, "title": f"What happens to {len(kinds)} kinds of creature",
              "concepts": ["rule", "chain"] + states, "requires": requires}
    return header, _documents(rng, sents, list(kind_of)), probes


def _block(b, seed, names, m, width):
    """One block of the curriculum: 3 atoms, 2 kinds and 1 rules unit, yielded lazily as (id, unit)."""
    def uid(prefix, i):
        return f"{prefix}-{i:0{width}d}"

    def rng(unit):
        return random.Random(f"accrete-world:{seed}:{unit}")

    ents, kind_of = [], {}
    for u in (uid("atoms", 3 * b + j) for j in range(3)):
        *unit, es = _atoms(rng(u), names, m)
        ents.append(es)
        yield u, unit
    half = len(ents[1]) // 2
    splits = [(ents[0] + ents[1][:half], [0, 1]), (ents[1][half:] + ents[2], [1, 2])]
    for j, (members, needs) in enumerate(splits):
        u = uid("kinds", 2 * b + j)
        *unit, ko = _kinds(rng(u), names, m, members, [uid("atoms", 3 * b + i) for i in needs])
        kind_of.update(ko)
        yield u, unit
    u = uid("rules", b)
    yield u, _rules(rng(u), names, m, kind_of, [uid("kinds", 2 * b + j) for j in range(2)])


# ---------------------------------------------------------------- primitive units

def _prim_world(seed):
    """The fixed facts of the real-word world (random but consistent for a seed)."""
    rng = random.Random(f"accrete-world:{seed}:primitive-world")
    atoms = {a: {rel: rng.choice(POOLS[rel]) for rel in ("color", "home", "food")}
             for members, *_ in PRIM_KINDS.values() for a in members}
    rules = {k: {t: rng.choice(list(PRIM_STATES)) for t in rng.sample(TRIGGERS, 2)} for k in PRIM_KINDS}
    return atoms, rules


def _prim_atoms(rng, atoms):
    """Statements about animals, the matching answer sentences and Q/A lines in the probe frames."""
    for a in rng.sample(list(atoms), rng.randint(1, 3)):
        for rel in rng.sample(["color", "home", "food"], rng.randint(1, 3)):
            v, s = atoms[a][rel], f"the {a}"
            stmt = _fill(rng.choice(KNOW[rel]), {"e": a, "v": v})
            yield rng.choice([stmt, f"{stmt} {_cap(_said(rel, s, v))}", _qa(rel, s, v),
                              f"{stmt} {_qa(rel, s, v)}", f"{stmt[:-1]}, so {_said(rel, s, v)}"])


def _prim_kinds(rng, k):
    """A kind, its properties, and members that inherit them ("..., so the robin has two legs.")."""
    members, *values = PRIM_KINDS[k]
    for rel, v in rng.sample(list(zip(["legs", "cover", "sound"], values)), rng.randint(1, 3)):
        prop = _fill(rng.choice(KNOW[rel]), _fields(k, rel=rel, v=v))
        yield rng.choice([prop, _qa(rel, _a(k), v), f"{prop} {_cap(_said(rel, _a(k), v))}"])
        for a in rng.sample(members, rng.randint(1, 2)):
            memb = _fill(rng.choice(KNOW["kind"]), _fields(k, e=a))
            yield rng.choice([memb, _qa("kind", f"the {a}", _a(k)), _qa(rel, f"the {a}", v),
                              f"{memb} {prop[:-1]}, so {_said(rel, f'the {a}', v)}",
                              f"{memb} {prop} {_qa(rel, f'the {a}', v)}"])


def _prim_rules(rng, k, rules):
    """A kind's rules and the actions that follow, applied to one of its members."""
    for t, st in rules[k].items():
        a, action = rng.choice(PRIM_KINDS[k][0]), PRIM_STATES[st]
        rule = _fill(rng.choice(KNOW["rule"]), _fields(k, t, v=st))
        acts = _fill(rng.choice(KNOW["act"]), _fields(rel="act", v=action, st=st))
        memb = _fill(rng.choice(KNOW["kind"]), _fields(k, e=a))
        yield rng.choice([rule, f"{rule} {acts}", _qa("rule", _a(k), st, t3=t[0]),
                          f"{acts} {_qa('act', _a(st) + ' creature', action)}",
                          f"{memb} {rule} So when the {a} {t[0]}, the {a} becomes {st}.",
                          f"{memb} {rule} {_qa('rule', f'the {a}', st, t3=t[0])}",
                          f"{memb} {rule} {acts} So when the {a} {t[0]}, it becomes {st} and {action}.",
                          _qa("chain", f"the {a}", action, t3=t[0])])


def _prim_doc(rng, world):
    """One short document of simple English that teaches the statement and probe frames."""
    atoms, rules = world
    r = rng.random()
    if r < 0.25:
        out = list(_prim_atoms(rng, atoms))
    elif r < 0.45:
        out = list(_prim_kinds(rng, rng.choice(list(PRIM_KINDS))))
    elif r < 0.65:
        out = list(_prim_rules(rng, rng.choice(list(PRIM_KINDS)), rules))
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


def _practice_world(rng, ents, kinds, states):
    """The facts of practice creatures, kinds and states: the knowledge units' relations, nonce names."""
    kind_of = {e: kinds[i % len(kinds)] for i, e in enumerate(rng.sample(ents, len(ents)))}
    return {"atoms": {e: {rel: rng.choice(POOLS[rel]) for rel in ("color", "home", "food")} for e in ents},
            "props": {k: {rel: rng.choice(POOLS[rel]) for rel in ("legs", "cover", "sound")} for k in kinds},
            "kind_of": {e: kind_of[e] for e in ents},
            "rules": {k: {t: rng.choice(states) for t in rng.sample(TRIGGERS, 2)} for k in kinds},
            "act": {st: rng.choice(POOLS["act"]) for st in states}}


def _practice_qa(w):
    """Every practice fact asked once in its probe frame: recall, inherited (inference) and chain."""
    for e, vals in w["atoms"].items():
        for rel, v in vals.items():
            yield _qa(rel, f"the {e}", v)
    for k, vals in w["props"].items():
        for rel, v in vals.items():
            yield _qa(rel, _a(k), v)
        for t, st in w["rules"][k].items():
            yield _qa("rule", _a(k), st, t3=t[0])
    for st, a in w["act"].items():
        yield _qa("act", f"{_a(st)} creature", a)
    for e, k in w["kind_of"].items():
        yield _qa("kind", f"the {e}", _a(k))
        for rel, v in w["props"][k].items():
            yield _qa(rel, f"the {e}", v)
        for t, st in w["rules"][k].items():
            yield _qa("rule", f"the {e}", st, t3=t[0])
            yield _qa("chain", f"the {e}", w["act"][st], t3=t[0])


def _practice_docs(rng, w):
    """Statement documents exactly as the knowledge units write them (atoms-, kinds- and rules-style
    paragraphs with filler), and separate documents of Q/A lines only."""
    ents, atoms, kinds, rules = list(w["atoms"]), [], [], []
    for e, vals in w["atoms"].items():
        for rel, v in vals.items():
            _mention(rng, atoms, rel, {"e": e, "v": v}, PRACTICE_MENTIONS)
    for k, vals in w["props"].items():
        for rel, v in vals.items():
            _mention(rng, kinds, rel, _fields(k, rel=rel, v=v), PRACTICE_MENTIONS)
        for t, st in w["rules"][k].items():
            _mention(rng, rules, "rule", _fields(k, t, v=st), PRACTICE_MENTIONS)
    for st, a in w["act"].items():
        _mention(rng, rules, "act", _fields(rel="act", v=a, st=st), PRACTICE_MENTIONS)
    for e, k in w["kind_of"].items():
        _mention(rng, kinds, "kind", _fields(k, e=e), PRACTICE_MENTIONS)
        _mention(rng, rules, "kind", _fields(k, e=e), PRACTICE_MENTIONS // 2)  # as rules units restate it
    docs = [d for sents in (atoms, kinds, rules) for d in _documents(rng, sents, ents)]
    qa = list(_practice_qa(w))
    rng.shuffle(qa)
    i = 0
    while i < len(qa):
        n = rng.randint(3, 6)
        docs.append(" ".join(qa[i:i + n]))
        i += n
    return docs


def _primitive(rng, world, chars, practice, register):
    """A primitive unit of about `chars` characters: practice creatures (statement documents and
    separate Q/A documents), the register (knowledge names in neutral sentences, see _register),
    then simple English about real animals, shuffled together."""
    docs = _practice_docs(rng, _practice_world(rng, *practice))
    docs += [" ".join(rng.sample([rng.choice(NEUTRAL).format(e=n), _filler(rng)], 2)) for n in register]
    n = sum(len(d) + 13 for d in docs)  # + the JSON wrapping
    while n < chars:
        docs.append(_prim_doc(rng, world))
        n += len(docs[-1]) + 13
    rng.shuffle(docs)
    title = f"Simple English: real animals, and {len(practice[0])} practice creatures stated and asked"
    header = {"kind": "primitive", "level": 0, "title": title,
              "concepts": ["english"], "requires": []}
    return header, docs, []


def _practice_names(seed, n_prim, n_practice):
    """Per primitive unit, (creatures, kinds, states) of practice: nonce names from their own pool, so
    that no knowledge unit (whose names are drawn after, with these reserved) can ever use one."""
    names = Names(random.Random(f"accrete-world:{seed}:practice-names"))
    n_kinds = max(1, round(n_practice / 3))  # 3 members per kind, as in the kinds units
    n_states = max(2, round(0.75 * n_kinds))  # 6 states per 8 kinds, as in the rules units
    return [tuple([names.new() for _ in range(n)] for n in (n_practice, n_kinds, n_states))
            for _ in range(n_prim)], names.used


def _register(names, blocks, m, n_prim, prim_chars):
    """Per primitive unit, the knowledge names it mentions (each name `mentions` times in all, spread
    over the units), drawn ahead from a copy of the name generator in the order the blocks draw them.

    A base that never read a name keeps untrained embeddings for its tokens, and LoRA on that base
    barely tells such names apart (measured: atoms-00 recall 46% without the register, 85% with it,
    tiny preset). So the primitive text mentions every knowledge name, as a real base has met rare
    words, in neutral sentences only ("Old stories tell of the skimer."): no fact, so probes start
    at chance."""
    ahead = copy.deepcopy(names)
    known = [ahead.new() for _ in range(38 * m * blocks)]  # per block: 3 x 8m creatures, 2 x 4m kinds, 6m states
    mentions = max(1, min(REGISTER_MENTIONS, int(0.15 * prim_chars / (len(known) * 60))))  # ~15% of primitive at most
    per_unit = [[] for _ in range(n_prim)]
    for i, n in enumerate(known):
        for k in range(mentions):
            per_unit[(i * mentions + k) % n_prim].append(n)
    return per_unit


# ---------------------------------------------------------------- writing

def _write_unit(path, uid, header, docs, probes, seed):
    """Stream one unit file to its place atomically; returns chars written."""
    head = {"unit": uid, **header, "source": f"accrete data/world/prepare.py seed={seed}", "license": LICENSE}
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for obj in chain([head], ({"text": d} for d in docs), probes):
            line = json.dumps(obj) + "\n"
            f.write(line)
            n += len(line)
    return n


def _plan(size="tiny", target_tokens=None):
    """(blocks, m, target_chars, prim_chars, n_prim, n_practice) for a size or a token target."""
    if size not in ("tiny", "small"):
        raise WorldError(f"--size {size!r}: use tiny or small")
    if target_tokens is not None and target_tokens < 50_000:
        raise WorldError(f"--target-tokens {target_tokens}: use at least 50000")
    if target_tokens is None:
        # m=2: 16 creatures per atoms unit, 48 recall probes: at n=24 a Wilson interval is about
        # +-20 points, too wide to tell a unit that was learned from chance at tiny scale
        blocks, m, target_chars = (1 if size == "tiny" else 10), 2, None
        prim_chars = TINY_PRIM_CHARS * blocks
    else:  # ~4 chars per token; units grow in size and in number, each by ~sqrt of the scale
        target_chars = 4 * target_tokens
        prim_chars = PRIM_SHARE * target_chars
        scale = (target_chars - prim_chars) / BLOCK_CHARS
        m = max(1, int(math.sqrt(scale) / 2))
        blocks = math.ceil(scale / m) + 1  # an upper bound: writing stops at the target
    n_prim = max(3, math.ceil(prim_chars / 4e6))
    n_practice = max(1, round(PRACTICE_SHARE * prim_chars / n_prim / PRACTICE_CHARS))
    return blocks, m, target_chars, prim_chars, n_prim, n_practice


def generate(out_dir, seed=0, size="tiny", target_tokens=None):
    """Write the world's unit files to out_dir; returns their paths (primitive first, then by block).

    size: "tiny" (1 block + 0.8 MB primitive) or "small" (10 blocks + 8 MB); target_tokens overrides it.
    """
    blocks, m, target_chars, prim_chars, n_prim, n_practice = _plan(size, target_tokens)
    width = max(2, len(str(3 * blocks)))
    practice, reserved = _practice_names(seed, n_prim, n_practice)
    world, names = _prim_world(seed), Names(random.Random(f"accrete-world:{seed}:names"))
    names.used |= reserved  # knowledge names never equal a practice name
    register = _register(names, blocks, m, n_prim, prim_chars)
    prims = ((f"prim-{i:0{width}d}", _primitive(random.Random(f"accrete-world:{seed}:prim-{i}"), world,
                                                 prim_chars / n_prim, practice[i], register[i]))
             for i in range(n_prim))
    knowledge = (u for b in range(blocks) for u in _block(b, seed, names, m, width))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, total = [], 0
    for uid, (header, docs, probes) in chain(prims, knowledge):
        written.append(out / f"{uid}.jsonl")
        n = _write_unit(written[-1], uid, header, docs, probes, seed)
        total += n
        if target_chars and header["kind"] == "knowledge" and total + n / 2 >= target_chars:
            break
    # a previous, larger run may have left units that this one did not write
    for p in out.glob("*.jsonl"):
        if re.fullmatch(r"(prim|atoms|kinds|rules)-\d+\.jsonl", p.name) and p not in written:
            p.unlink()
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "units"), help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="tiny", help="tiny (CPU ladder) or small (~10x)")
    p.add_argument("--target-tokens", type=int, default=None, help="write about this many tokens (chars/4)")
    args = p.parse_args(argv)
    try:
        t0 = time.time()
        files = generate(args.out, args.seed, args.size, args.target_tokens)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    chars = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} units, {chars:,} chars (~{chars // 4:,} tokens) to {args.out} "
          f"in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
