"""A short answer to a search, grounded on the retrieved entities and citing them.

As with the campaign narrative (ml.crm.narrative), the prompt carries only what retrieval found
(each entity's key, type, label and evidence) and tells the model to use nothing else; the
answer is then checked: a citation of an entity that was not retrieved is removed, and an answer
left citing none of them is dropped (the ranked results stand alone).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ml.knowledge.retrieval import Result

SYSTEM_PROMPT = (
    "You answer a question about one business's own data. Use ONLY the entities in the JSON the "
    "user sends, most relevant first. Cite every entity you mention by its key in square brackets, "
    "e.g. [game:1942]. Answer in at most 80 words of plain prose. If none of the entities answers "
    "the question, say so and cite nothing."
)
MAX_ENTITIES = 10
CITATION = re.compile(r"\[([a-z_]+:[^\[\]\s]+)\]")


def grounding_payload(question: str, results: Sequence[Result]) -> dict:
    return {
        "question": question,
        "entities": [
            {
                "key": r.key,
                "type": r.entity_type,
                "label": r.label,
                "evidence": [e["text"] for e in r.evidence()],
            }
            for r in results[:MAX_ENTITIES]
        ],
    }


def chat_messages(payload: dict) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps(payload, ensure_ascii=False, sort_keys=True)},
    ]


@dataclass(frozen=True)
class Answer:
    status: str  # not configured | ok | rejected | failed
    text: str | None = None
    model: str | None = None
    reason: str | None = None
    citations: tuple[str, ...] = ()
    dropped: tuple[str, ...] = field(default=())  # cited keys that were not retrieved

    def as_dict(self) -> dict:
        return {"status": self.status, "text": self.text, "model": self.model, "reason": self.reason,
                "citations": list(self.citations), "dropped_citations": list(self.dropped)}  # fmt: skip


def check_answer(answer: str, payload: dict, model: str | None) -> Answer:
    """Keep only citations of retrieved entities; an answer citing none of them is rejected."""
    retrieved = {e["key"] for e in payload["entities"]}
    cited = list(dict.fromkeys(CITATION.findall(answer)))
    dropped = tuple(key for key in cited if key not in retrieved)
    kept = tuple(key for key in cited if key in retrieved)
    text = CITATION.sub(lambda m: m.group(0) if m.group(1) in retrieved else "", answer)
    text = re.sub(r"\s+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    if not text:
        return Answer("rejected", None, model, "the model returned an empty answer", dropped=dropped)
    if not kept:
        return Answer("rejected", None, model, "it cites none of the retrieved entities", dropped=dropped)
    return Answer("ok", text, model, None, kept, dropped)
