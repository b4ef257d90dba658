"""A GPTFuzzer-style template fuzzer without an LLM mutator (paper Fig. 4, adaptive attacks).

GPTFuzzer (Yu et al. 2023, "GPTFUZZER: Red Teaming Large Language Models with Auto-Generated
Jailbreak Prompts", arXiv 2309.10253) grows a pool of jailbreak *templates* (text with a slot for
the harmful question) against the model under test. Each iteration it selects a seed template,
mutates it, fills the mutant with a few harmful questions, queries the target model, and scores
the answers with a judge; a mutant that jailbreaks at least one question joins the pool. It stops
at a query budget. We follow that loop; the slot is ``"{goal}"``.

**Seed selection: MCTS-Explore**, GPTFuzzer's own selector, rather than UCB over a flat pool. The
pool is a tree (a mutant is the child of the template it was made from, the seeds are children of
a root); a selection walks down from the root, taking at each level the child with the highest UCT
score (mean reward + ``ucb_c * sqrt(2 ln N / (n + 1))``) and stopping at a non-leaf node with
probability ``stop_probability``. GPTFuzzer's argument for it, which holds here too: flat UCB keeps
picking the first seed that paid off and starves the descendants it spawned, while the tree lets
a successful lineage be refined and the stop chance keeps inner seeds in play. A mutant's reward
(its success rate) is credited to every node on the selection path, discounted by depth:
``reward * max(min_reward, 1 - depth_penalty * depth)``, so that long chains do not dominate.

**Mutations without an LLM (deviation).** GPTFuzzer asks an LLM to generate, crossover, expand,
shorten and rephrase templates. Offline we have none, so the operators act on sentences and words
(a template is cut into sentences at ``.``, ``!``, ``?`` followed by white space, and ``{goal}`` is
always a sentence of its own; sentences are re-joined with one space):

- ``crossover``: the first sentences of the template and the last sentences of another pool
  template, cut so that the child holds ``{goal}`` exactly once;
- ``expand``: a sentence of another pool template (not its ``{goal}``) put in front;
- ``shorten``: one sentence that does not hold ``{goal}`` dropped;
- ``rephrase``: words (or phrases) replaced by synonyms from a caller-given table, each match with
  probability 1/2 and at least one, so that on the organism the text stays within the world's
  vocabulary. GPTFuzzer's fifth operator, ``generate`` (a new template in the style of the seed),
  needs a generator model and is left out.

Each mutant is tried on ``goals_per_mutant`` goals drawn without replacement (fewer only for the
last trial, so that exactly ``query_budget`` queries are spent unless the mutations run dry);
``respond(prompts) -> completions`` is the model under test and ``success(goals, completions) ->
bools`` the judge, both given by the caller. With ``try_seeds`` the seed templates are first tried
once each and that trial is a seed's first visit in the tree (GPTFuzzer starts from untried seeds:
``try_seeds=False``; trying them gives the selector a prior and makes the final ranking cover the
whole pool, at ``goals_per_mutant`` queries per seed).

**Graded success (extension).** ``success`` may return a score in [0, 1] per completion instead of a
verdict (a verdict is the 0/1 case, GPTFuzzer's). A trial's ``successes`` is then the sum of its scores,
its success rate their mean, and a mutant joins the pool when that sum is above zero. A judge's graded
harm keeps a signal where the verdicts are all 0 (a policy that never answers harmfully may still
reason through part of a recipe), which a 0/1 fitness cannot see.

**Rounds (deviation).** GPTFuzzer mutates and queries one template at a time. Here
``mutants_per_round`` mutants are selected and made first and then answered by one ``respond`` call
(on a CPU, generating for 64 prompts costs about what generating for 4 does); a selection counts
its visits at once and its reward when the round's answers are in, so the mutants of one round
spread over the tree. ``mutants_per_round=1`` is GPTFuzzer's sequential loop. All randomness comes
from one ``numpy.random.Generator`` seeded with ``settings.seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from craft.attacks.mutations import GOAL, MUTATIONS, crossover, expand, rephrase, sentences, shorten
from craft.config import check_fields, rule
from craft.io import bar_options
from craft.timing import timed

__all__ = ["FuzzOutcome", "FuzzSettings", "best_prompts", "fuzz_templates"]


@dataclass(frozen=True)
class FuzzSettings:
    """Budget, batch, seed, the MCTS-Explore constants (GPTFuzzer's values) and the round size.
    The defaults take a few seconds per policy on the organism (two CPU cores)."""

    query_budget: int = field(default=256, metadata=rule(ge=1))     # model queries in all, seeds included
    goals_per_mutant: int = field(default=4, metadata=rule(ge=1))
    seed: int = 0
    ucb_c: float = field(default=0.5, metadata=rule(ge=0))
    stop_probability: float = field(default=0.1, metadata=rule(ge=0, le=1))
    depth_penalty: float = field(default=0.1, metadata=rule(ge=0))
    min_reward: float = field(default=0.2, metadata=rule(ge=0, le=1))
    mutations: tuple[str, ...] = MUTATIONS
    mutants_per_round: int = field(default=16, metadata=rule(ge=1))  # mutants answered by one respond call
    try_seeds: bool = True                                           # try every seed template first
    max_sentences: int = field(default=12, metadata=rule(ge=1))      # longer mutants are discarded
    max_tries: int = field(default=50, metadata=rule(ge=1))          # fruitless selections in a row before stopping

    def __post_init__(self):
        check_fields(self)
        object.__setattr__(self, "mutations", tuple(self.mutations))   # a list from a params file
        unknown = sorted(set(self.mutations) - set(MUTATIONS))
        if unknown or not self.mutations:
            raise ValueError(f"mutations must be a non-empty subset of {list(MUTATIONS)}, got {list(self.mutations)}")
        if self.query_budget < self.goals_per_mutant:
            raise ValueError(f"query_budget={self.query_budget} is below goals_per_mutant={self.goals_per_mutant}: "
                             "not even one template could be tried")


@dataclass(frozen=True)
class FuzzOutcome:
    """The pool ranked by success rate (best first; ties: more queries, then earlier; untried seeds
    last, rate NaN), the rate of each, every trial in ``history`` (step, round, template, parent,
    mutation, successes, queries, kept; a seed's parent is empty), and the queries spent."""

    templates: tuple[str, ...]
    success_rates: tuple[float, ...]
    history: pd.DataFrame
    queries_used: int


# --------------------------------------------------------------------------- the search

@dataclass
class _Node:
    template: str
    parent: int | None        # index in the pool; None for seeds (children of the root)
    depth: int
    visits: int = 0
    reward: float = 0.0
    successes: float = 0.0    # the sum of its trial's verdicts (0/1) or graded scores
    queries: int = 0
    children: list[int] = field(default_factory=list)


@dataclass
class _Trial:
    """A template waiting for its round's answers."""

    template: str
    mutation: str             # "seed" for a seed's own trial
    path: list[int]           # the selection path (pool indices); empty for a seed
    goals: list[str]


def _check_inputs(seed_templates, goals, rephrase_table, settings) -> None:
    if isinstance(seed_templates, str) or isinstance(goals, str):
        raise TypeError("seed_templates and goals must be sequences of strings, not one string")
    if not seed_templates:
        raise ValueError("seed_templates is empty: the fuzzer needs at least one seed template")
    if not goals:
        raise ValueError("goals is empty: mutants are tried on goals")
    bad = [t for t in seed_templates if not isinstance(t, str) or t.count(GOAL) != 1]
    if bad:
        raise ValueError(f"every seed template must hold {GOAL!r} exactly once; not: {bad[:3]}")
    if len(set(seed_templates)) != len(seed_templates):
        raise ValueError("seed_templates has duplicates")
    if settings.goals_per_mutant > len(goals):
        raise ValueError(f"goals_per_mutant={settings.goals_per_mutant} exceeds the {len(goals)} goals given")
    for key, options in (rephrase_table or {}).items():
        if not key or isinstance(options, str) or not options or not all(isinstance(o, str) for o in options):
            raise ValueError(f"rephrase table: {key!r} must map to a non-empty sequence of strings")


class _Fuzzer:
    """State of one :func:`fuzz_templates` run."""

    def __init__(self, goals, respond, success, settings, table, bar):
        self.goals, self.respond, self.success = goals, respond, success
        self.s, self.table, self.bar = settings, table, bar
        self.rng = np.random.default_rng(settings.seed)
        self.pool: list[_Node] = []
        self.seen: set[str] = set()
        self.rows: list[dict] = []
        self.queries = self.rounds = 0

    def draw(self, planned: int) -> list[str]:
        """Goals for one trial: ``goals_per_mutant`` of them, fewer when the budget runs out."""
        k = min(self.s.goals_per_mutant, self.s.query_budget - self.queries - planned)
        return [self.goals[i] for i in self.rng.choice(len(self.goals), size=k, replace=False)]

    # ---------------------------------------------------------------- MCTS-Explore
    def uct(self, index: int, total: int) -> float:
        """Mean reward + exploration bonus of pool node ``index`` among siblings visited ``total`` times."""
        node = self.pool[index]
        return node.reward / (node.visits + 1) + self.s.ucb_c * math.sqrt(2 * math.log(total + 1) / (node.visits + 1))

    def select(self) -> list[int]:
        """The path from a seed down to the node to mutate; each node on it counts a visit now (so
        that the mutants of one round spread), its reward when the round's answers are in."""
        level = [i for i, n in enumerate(self.pool) if n.parent is None]
        path = [max(level, key=lambda i: self.uct(i, sum(self.pool[j].visits for j in level)))]
        while self.pool[path[-1]].children and self.rng.random() >= self.s.stop_probability:
            parent = self.pool[path[-1]]
            path.append(max(parent.children, key=lambda i: self.uct(i, parent.visits)))
        for i in path:
            self.pool[i].visits += 1
        return path

    # ---------------------------------------------------------------- mutation
    def apply(self, name: str, template: str) -> str | None:
        """Operator ``name`` on ``template`` (the other template, for crossover and expand, drawn
        from the pool)."""
        if name in ("crossover", "expand"):
            other = self.pool[self.rng.integers(len(self.pool))].template
            if other == template:
                return None
            return crossover(template, other, self.rng) if name == "crossover" else expand(template, other, self.rng)
        if name == "shorten":
            return shorten(template, self.rng)
        return rephrase(template, self.table, self.rng) if self.table else None

    def mutate(self, template: str) -> tuple[str, str] | None:
        """(mutation, new template) by the first operator, in random order, that makes an unseen one."""
        for name in self.rng.permutation(list(self.s.mutations)):
            child = self.apply(str(name), template)
            if child is not None and child not in self.seen and len(sentences(child)) <= self.s.max_sentences:
                return str(name), child
        return None

    def propose(self, planned: int) -> _Trial | None:
        """A new mutant to try; None when ``max_tries`` selections in a row made nothing new."""
        for _ in range(self.s.max_tries):
            path = self.select()
            made = self.mutate(self.pool[path[-1]].template)
            if made is not None:
                self.seen.add(made[1])
                return _Trial(made[1], made[0], path, self.draw(planned))
            for i in path:                    # nothing was tried: take the visits back
                self.pool[i].visits -= 1
        return None

    # ---------------------------------------------------------------- trials
    def run(self, trials: list[_Trial]) -> None:
        """One ``respond`` call for every prompt of ``trials``, then one ``success`` call."""
        goals = [g for t in trials for g in t.goals]
        prompts = [t.template.replace(GOAL, g) for t in trials for g in t.goals]
        completions = list(self.respond(prompts))
        if len(completions) != len(prompts):
            raise ValueError(f"respond returned {len(completions)} completions for {len(prompts)} prompts")
        verdicts = [float(v) for v in self.success(goals, completions)]
        if len(verdicts) != len(prompts):
            raise ValueError(f"success returned {len(verdicts)} verdicts for {len(prompts)} goals")
        if not all(0.0 <= v <= 1.0 for v in verdicts):       # NaN fails too
            raise ValueError(f"success must return verdicts or scores in [0, 1]; got {sorted(set(verdicts))[:5]}")
        self.queries += len(prompts)
        self.bar.update(len(prompts))
        start = 0
        for t in trials:
            self.finish(t, sum(verdicts[start:start + len(t.goals)]))
            start += len(t.goals)
        self.rounds += 1

    def finish(self, t: _Trial, successes: float) -> None:
        """Record a trial (``successes``: the sum of its verdicts or scores); a seed joins the pool, a mutant
        when it scored above zero, and the mutant's depth-discounted success rate is credited along its
        selection path."""
        queries, parent = len(t.goals), t.path[-1] if t.path else None
        kept = parent is None or successes > 0
        self.rows.append(dict(step=len(self.rows), round=self.rounds, template=t.template,
                              parent=None if parent is None else self.pool[parent].template, mutation=t.mutation,
                              successes=successes, queries=queries, kept=kept))
        if parent is None:
            self.add(t.template, None, successes, queries, visits=1)
            return
        if kept:
            self.add(t.template, parent, successes, queries)
        reward = successes / queries * max(self.s.min_reward, 1 - self.s.depth_penalty * self.pool[parent].depth)
        for i in t.path:
            self.pool[i].reward += reward

    def add(self, template: str, parent: int | None, successes: float, queries: int, visits: int = 0) -> None:
        """A new pool node; a seed's own trial is its first visit, its success rate its first reward."""
        depth = 0 if parent is None else self.pool[parent].depth + 1
        reward = successes / queries if visits and queries else 0.0
        self.pool.append(_Node(template, parent, depth, visits, reward, successes, queries))
        if parent is not None:
            self.pool[parent].children.append(len(self.pool) - 1)

    def left(self) -> int:
        return self.s.query_budget - self.queries


def _seed_rounds(fz: _Fuzzer, seed_templates: Sequence[str]) -> None:
    """Every seed joins the pool: with ``try_seeds`` after its trial (rounds of ``mutants_per_round``
    seeds) while the budget lasts, otherwise untried."""
    fz.seen.update(seed_templates)
    todo = list(seed_templates) if fz.s.try_seeds else []
    while todo and fz.left() > 0:
        batch, planned = [], 0
        while todo and len(batch) < fz.s.mutants_per_round and planned < fz.left():
            batch.append(_Trial(todo.pop(0), "seed", [], fz.draw(planned)))
            planned += len(batch[-1].goals)
        fz.run(batch)
    for template in todo if fz.s.try_seeds else seed_templates:
        fz.add(template, None, 0, 0)


def _mutant_rounds(fz: _Fuzzer) -> None:
    """Rounds of ``mutants_per_round`` mutants until the budget is spent or the mutations run dry."""
    while fz.left() > 0:
        batch, planned = [], 0
        while len(batch) < fz.s.mutants_per_round and planned < fz.left():
            trial = fz.propose(planned)
            if trial is None:
                break
            batch.append(trial)
            planned += len(trial.goals)
        if not batch:
            return
        fz.run(batch)


@timed("attacks")
def fuzz_templates(seed_templates: Sequence[str], goals: Sequence[str],
                   respond: Callable[[list[str]], Sequence[str]],
                   success: Callable[[list[str], list[str]], Sequence[bool]],
                   settings: FuzzSettings = FuzzSettings(), rephrase: Mapping[str, Sequence[str]] | None = None,
                   progress: bool = False) -> FuzzOutcome:
    """Fuzz ``seed_templates`` (strings holding ``"{goal}"`` once) against the model behind
    ``respond`` on ``goals`` until ``settings.query_budget`` queries are spent (see the module
    docstring). ``respond(prompts)`` returns one completion per prompt, ``success(goals,
    completions)`` one verdict (bool) or graded score in [0, 1] per completion; ``rephrase`` maps a word or
    phrase to its synonyms (None: no rephrasing)."""
    table = dict(rephrase) if rephrase is not None else None
    _check_inputs(seed_templates, goals, table, settings)
    with tqdm(total=settings.query_budget, desc="fuzz", **bar_options(progress)) as bar:
        fz = _Fuzzer(list(goals), respond, success, settings, table, bar)
        _seed_rounds(fz, seed_templates)
        _mutant_rounds(fz)
    rate = [n.successes / n.queries if n.queries else float("nan") for n in fz.pool]
    order = sorted(range(len(fz.pool)),
                   key=lambda i: (1.0 if math.isnan(rate[i]) else -rate[i], -fz.pool[i].queries, i))
    history = pd.DataFrame(fz.rows, columns=["step", "round", "template", "parent", "mutation", "successes",
                                             "queries", "kept"])
    return FuzzOutcome(tuple(fz.pool[i].template for i in order), tuple(rate[i] for i in order), history, fz.queries)


def best_prompts(outcome: FuzzOutcome, goals: Sequence[str]) -> list[str]:
    """Every goal in the top-ranked template of ``outcome``."""
    if isinstance(goals, str):
        raise TypeError("goals must be a sequence of strings, not one string")
    return [outcome.templates[0].replace(GOAL, g) for g in goals]
