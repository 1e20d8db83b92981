"""ROME edits on the `facts` task: build edit requests from its knowledge base and measure each edit.

An edit "(subject, relation) -> new attribute" is judged by
  * efficacy: the edited prompt now predicts the new attribute (argmax);
  * held-out retention: accuracy on every fact about the *other* subjects (all relations);
  * same-subject retention (reported, not promised): the subject's other relations.
Each edit is applied in a `with` block and undone before the next.

    >>> task = interp.tasks.get("facts")
    >>> summary, reports = rome_on_facts(model, task, n_edits=10, config=RomeConfig(layer=0))
    >>> summary["efficacy"], summary["heldout_after"]
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import torch
from torch import Tensor

from circuits.editing.evaluate import EditReport, Probe, evaluate_edit
from circuits.editing.rome import EditRequest, RomeConfig, key_covariance, rome_edit
from interp.errors import InterpError
from interp.hooked import HookedModel
from interp.tasks.facts import RELATIONS, Facts
from interp.tasks.vocab import TOKEN_ID, encode_words

logger = logging.getLogger(__name__)

Subject = tuple[str, str]
SUBJECT_LAST, END = 2, 9  # every facts prompt: <bos> First Last + 6 relation words


def fact_prompt(subject: Subject, relation: str) -> Tensor:
    """Token ids [pos] of the prompt asking `relation` of `subject`."""
    if relation not in RELATIONS:
        raise InterpError(f"unknown relation {relation!r}; relations: {', '.join(RELATIONS)}")
    return torch.tensor(encode_words([*subject, *RELATIONS[relation][0].split()]))


def _probe(pairs: list[tuple[Subject, str, str]]) -> Probe:
    """A probe over (subject, relation, expected attribute) triples."""
    prompts = (
        torch.stack([fact_prompt(s, r) for s, r, _ in pairs]) if pairs else torch.zeros(0, END + 1).long()
    )
    answers = torch.tensor([TOKEN_ID[a] for _, _, a in pairs], dtype=torch.long)
    return Probe(prompts, torch.full((len(pairs),), END - 1), answers)


def fact_request(
    task: Facts, subject: Subject, relation: str, new_attribute: str, keep_subjects: tuple[Subject, ...] = ()
) -> EditRequest:
    """Make `subject`'s `relation` be `new_attribute`, keeping the subject's other relations and every
    relation of `keep_subjects` (prompts whose predictions the value search must not move)."""
    kb = task.knowledge_base()
    if subject not in kb or any(s not in kb for s in keep_subjects):
        raise InterpError(f"{' '.join(subject)} (or a kept subject) is not in this knowledge base")
    kept = [(subject, r) for r in RELATIONS if r != relation] + [
        (s, r) for s in keep_subjects for r in RELATIONS
    ]
    keep = torch.stack([fact_prompt(s, r) for s, r in kept])
    n, m = 1, len(kept)
    return EditRequest(
        prompts=fact_prompt(subject, relation)[None],
        subject_last=torch.full((n,), SUBJECT_LAST),
        end=torch.full((n,), END - 1),
        target=TOKEN_ID[new_attribute],
        keep=keep,
        keep_subject_last=torch.full((m,), SUBJECT_LAST),
        keep_end=torch.full((m,), END - 1),
    )


def draw_edits(task: Facts, n: int, seed: int = 0) -> list[tuple[Subject, str, str]]:
    """`n` edits (subject, relation, new attribute) with distinct subjects and a changed attribute."""
    kb = task.knowledge_base()
    subjects = list(kb)
    if n > len(subjects):
        raise InterpError(f"at most {len(subjects)} edits with distinct subjects, asked for {n}")
    rng = np.random.default_rng([seed, 0xED17])
    edits = []
    for index in rng.choice(len(subjects), size=n, replace=False):
        subject = subjects[int(index)]
        relation = str(rng.choice(list(RELATIONS)))
        choices = [v for v in RELATIONS[relation][1] if v != kb[subject][relation]]
        edits.append((subject, relation, str(rng.choice(choices))))
    return edits


def rome_on_facts(
    model: HookedModel,
    task: Facts,
    n_edits: int = 10,
    config: RomeConfig = RomeConfig(),
    seed: int = 0,
    covariance_prompts: int = 512,
    keep_subjects: int = 0,
) -> tuple[dict[str, float], list[tuple[tuple[Subject, str, str], EditReport]]]:
    """Run `n_edits` ROME edits one at a time (each undone after), return mean scores and each report.

    Per edit, `keep_subjects` other subjects (drawn with the seed) are kept by the value search (KL
    term) and left out of the held-out score, which covers every fact of all remaining subjects.
    Summary keys: efficacy, efficacy_before, heldout_before, heldout_after, same_subject_before/after.
    """
    kb = task.knowledge_base()
    subjects = list(kb)
    cov = key_covariance(
        model, config.layer, task.generate(covariance_prompts, seed=seed + 1).clean.to(model.device)
    )
    rng = np.random.default_rng([seed, 0x4EE9])
    reports = []
    for subject, relation, new in draw_edits(task, n_edits, seed):
        others = [s for s in subjects if s != subject]
        kept = tuple(
            others[int(i)]
            for i in rng.choice(len(others), size=min(keep_subjects, len(others)), replace=False)
        )
        request = fact_request(task, subject, relation, new, kept)
        edit = rome_edit(model, request, cov, config)
        scored = [s for s in others if s not in kept]
        heldout = _probe([(s, r, kb[s][r]) for s in scored for r in RELATIONS])
        same = _probe([(subject, r, kb[subject][r]) for r in RELATIONS if r != relation])
        edited = _probe([(subject, relation, new)])
        report = evaluate_edit(model, edit, edited, heldout, same_subject=same)
        logger.info("edit %s %s -> %s: %s", " ".join(subject), relation, new, report)
        reports.append(((subject, relation, new), report))
    keys = ("efficacy", "efficacy_before", "heldout_before", "heldout_after")
    summary = {k: float(np.mean([asdict(r)[k] for _, r in reports])) for k in keys}
    for k in ("same_subject_before", "same_subject_after"):
        summary[k] = float(np.mean([r.extra[k] for _, r in reports]))
    summary["n_edits"] = float(len(reports))
    return summary, reports
