"""AI backends that summarize, categorize and tag an article.

Two backends share one call shape, ``analyze(title=, text=, categories=, existing_tags=)``:

* ``LocalBackend`` works offline and deterministically (extractive summary,
  keyword categories, salient-term tags, stopword language guess), so the
  pipeline runs without any AI service configured.
* ``OpenAIBackend`` talks to the OpenAI API or any server that speaks its Chat
  Completions wire format (vLLM, llama.cpp, Ollama). It asks for structured
  output first and falls back to plain JSON for servers without schema support.

Neither backend retries: the task system owns retries, and a 429 surfaces as
``AIRateLimited`` carrying the server's requested delay.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import openai

PROMPT_VERSION = "1"
UNCATEGORIZED = "Uncategorized"
MIN_TAGS = 3
MAX_TAGS = 5
SUMMARY_CHAR_LIMIT = 800
DEFAULT_RATE_LIMIT_DELAY = 20.0


@dataclass
class CategoryInfo:
    name: str
    description: str = ""
    keywords: list[str] = field(default_factory=list)


@dataclass
class AIResult:
    summary: str
    category: str
    tags: list[str]
    language: str
    model: str


class AIError(Exception):
    """A failed AI call or an unusable answer.

    ``permanent`` is True when retrying cannot help (a rejected API key, an
    unknown model), so callers may fail the task instead of retrying it.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class AIRateLimited(AIError):
    """The server answered 429; ``retry_after`` is the delay it asked for, in seconds."""

    def __init__(self, message: str, *, retry_after: float = DEFAULT_RATE_LIMIT_DELAY) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- text helpers shared by the local backend --------------------------------------------------------------------

# Small function-word lists: enough to tell languages apart and to keep filler out of tags.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a about above after again against all also am an and any are as at be because been before being below "
        "between both but by can could did do does doing down during each few for from further had has have having "
        "he her here hers herself him himself his how i if in into is it its itself just more most my myself no nor "
        "not now of off on once only or other our ours ourselves out over own same she should so some such than that "
        "the their theirs them themselves then there these they this those through to too under until up very was we "
        "were what when where which while who whom why will with would you your yours yourself yourselves one two "
        "many much may might must new like get got make made use used using way well even still us been".split()
    ),
    "de": frozenset(
        "der die das und ist nicht ein eine einer eines einem einen zu den dem des mit sich auf für von im ich sie es "
        "wir ihr er auch als an aus bei bis da dass durch hat haben hatte ist kann können man mehr nach noch nur oder "
        "sein sind so über um unter vom vor war waren was weil wenn wie wird werden zum zur zwischen aber doch schon "
        "sehr diese dieser dieses jetzt hier".split()
    ),
    "fr": frozenset(
        "le la les un une des du de et est en que qui dans pour pas sur au aux avec ce ces cette il elle ils elles "
        "nous vous je tu on se sa son ses leur leurs par plus mais ou où donc ni car ne sont été être avoir fait comme "
        "tout tous très aussi bien encore".split()
    ),
    "es": frozenset(
        "el la los las un una unos unas de del y que en es por para con no se su sus al lo como más pero sin sobre "
        "este esta estos estas ese esa entre cuando muy también hay ser son fue han ha yo tu él ella nosotros ellos "
        "porque donde desde hasta".split()
    ),
    "pt": frozenset(
        "o a os as um uma uns umas de do da dos das e que em no na nos nas por para com não se seu sua seus suas ao "
        "como mais mas sem sobre este esta isso entre quando muito também há ser são foi é ele ela nós eles porque "
        "onde até pelo pela".split()
    ),
    "it": frozenset(
        "il lo la i gli le un uno una di del della dei delle e che in è per con non si suo sua al alla come più ma "
        "senza sopra questo questa tra fra quando molto anche sono stato essere ha hanno perché dove fino nel nella "
        "degli".split()
    ),
    "nl": frozenset(
        "de het een en van in is dat op te zijn met voor niet aan er maar om ook als bij nog wel uit door naar dan "
        "wat die dit over hij zij wij ze je ik kan worden wordt werd hebben heeft".split()
    ),
    "ru": frozenset(
        "и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было вот от "
        "меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж "
        "вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтобы без "
        "будто чего раз тоже себе под будет это этот эта эти".split()
    ),
}
ALL_STOPWORDS: frozenset[str] = frozenset().union(*STOPWORDS.values())

_WORD_RE = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) and whitespace, or at a line break.
_TOKEN_RE = re.compile(r"\w+")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+|\n+")


def _words(text: str) -> list[str]:
    return [w.strip("'’-").lower() for w in _WORD_RE.findall(text)]


def _terms(text: str) -> list[str]:
    """Content words: lower-case, at least three letters, not a stopword of any known language."""
    return [w for w in _words(text) if len(w) >= 3 and w not in ALL_STOPWORDS]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END_RE.split(text) if s and len(s.strip()) > 1]


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    # Look-arounds instead of \b so phrases that start or end with punctuation ("C++", ".NET") still match.
    return re.compile(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)", re.IGNORECASE)


class _PhraseCounter:
    """Case-insensitive whole-word phrase counts in one text, fast enough for hundreds of phrases.

    Single words are looked up in a token count; only phrases with spaces or
    punctuation fall back to a regex scan, and only when the phrase occurs at all.
    """

    def __init__(self, text: str) -> None:
        self.lower = text.lower()
        self.tokens = Counter(_TOKEN_RE.findall(self.lower))

    def count(self, phrase: str) -> int:
        phrase = phrase.strip().lower()
        if not phrase:
            return 0
        if _TOKEN_RE.fullmatch(phrase):
            return self.tokens[phrase]
        if phrase not in self.lower:
            return 0
        return len(_phrase_pattern(phrase).findall(self.lower))


def _clip_at_word(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at the last word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip()


def detect_language(text: str) -> str:
    """ISO 639-1 code guessed from stopword frequency, or "" when no language clearly wins."""
    words = _words(text[:20000])
    if not words:
        return ""
    counts = Counter(words)
    scores = {lang: sum(counts[w] for w in stops) for lang, stops in STOPWORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    # Demand a real signal: a few stopword hits and a decent share of all words.
    if scores[best] < 2 or scores[best] < 0.05 * len(words):
        return ""
    return best


class LocalBackend:
    """Offline, deterministic analysis; the default when no AI service is configured."""

    name = "local"
    model = "local-extractive-1"

    def analyze(self, *, title: str, text: str, categories: list[CategoryInfo], existing_tags: list[str]) -> AIResult:
        if not text or not text.strip():
            raise AIError("no text to summarize")
        return AIResult(
            summary=self._summary(text),
            category=self._category(title, text, categories),
            tags=self._tags(title, text, existing_tags),
            language=detect_language(text),
            model=self.model,
        )

    def _summary(self, text: str) -> str:
        sentences = _sentences(text)
        if not sentences:
            return _clip_at_word(text.strip(), SUMMARY_CHAR_LIMIT)
        doc_tf = Counter(_terms(text))
        sentence_terms = [set(_terms(s)) for s in sentences]
        n = len(sentences)
        df = Counter(term for terms in sentence_terms for term in terms)

        def score(index: int) -> float:
            terms = sentence_terms[index]
            if not terms:
                return 0.0
            # Frequent document terms count, terms found in every sentence count less (idf),
            # and the square root keeps long sentences from winning on length alone.
            weight = sum(doc_tf[t] * math.log(1 + n / df[t]) for t in terms)
            return weight / math.sqrt(len(terms))

        wanted = min(n, max(3, min(5, n // 8)))
        ranked = sorted(range(n), key=lambda i: (-score(i), i))
        chosen: list[int] = []
        length = 0
        for index in ranked:
            if len(chosen) >= wanted:
                break
            extra = len(sentences[index]) + (1 if chosen else 0)
            if chosen and length + extra > SUMMARY_CHAR_LIMIT:
                continue
            chosen.append(index)
            length += extra
        summary = " ".join(sentences[i] for i in sorted(chosen))
        return _clip_at_word(summary, SUMMARY_CHAR_LIMIT)

    def _category(self, title: str, text: str, categories: list[CategoryInfo]) -> str:
        # The title counts double: it says what the article is about.
        counter = _PhraseCounter(f"{title}\n{title}\n{text}")
        best_name, best_score = UNCATEGORIZED, 0
        for category in categories:
            phrases = {p.strip().lower() for p in [category.name, *category.keywords] if p and p.strip()}
            score = sum(counter.count(p) for p in phrases)
            if score > best_score:  # strict: on a tie the earlier category wins, deterministically
                best_name, best_score = category.name, score
        return best_name

    def _tags(self, title: str, text: str, existing_tags: list[str]) -> list[str]:
        counter = _PhraseCounter(f"{title}\n{text}")
        tags: list[str] = []
        existing_hits = []
        for tag in dict.fromkeys(t.strip().lower() for t in existing_tags if t and t.strip()):
            hits = counter.count(tag)
            if hits:
                existing_hits.append((-hits, tag))
        tags.extend(tag for _, tag in sorted(existing_hits)[:MAX_TAGS])

        counts = Counter(_terms(text))
        for term in _terms(title):
            counts[term] += 2  # a title word is a strong hint of what the article is about
        taken = set(tags)
        for term, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if len(tags) >= MAX_TAGS or (len(tags) >= MIN_TAGS and counts[term] < 2):
                break
            if term not in taken:
                tags.append(term)
                taken.add(term)
        return tags


# --- OpenAI-compatible backend -----------------------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You file web articles into a personal knowledge base. For the article you are given, return a JSON object "
    'with exactly these keys: "summary" (3 to 5 sentences in the language of the article, at most 800 characters), '
    '"category" (exactly one name chosen only from the list of categories; use "Uncategorized" if none fits), '
    '"tags" (3 to 5 short lower-case topic tags; prefer tags from the list of existing tags when they fit, and '
    'invent new ones only when none fit), and "language" (the ISO 639-1 code of the article, for example "en").'
)
FALLBACK_INSTRUCTION = "Answer with the JSON object only, no other text."
_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_FORMATS = ("json_schema", "json_object", "none")


def _response_schema(category_names: list[str]) -> dict[str, Any]:
    # Length limits (minItems/maxItems) are left to the prompt: the strictest schema subset shared by OpenAI and
    # local servers does not support them, and our own validation clips the list anyway.
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "3 to 5 sentences, at most 800 characters"},
            "category": {"type": "string", "enum": category_names},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "3 to 5 lower-case tags"},
            "language": {"type": "string", "description": "ISO 639-1 code"},
        },
        "required": ["summary", "category", "tags", "language"],
        "additionalProperties": False,
    }


def parse_json_object(content: str) -> dict[str, Any]:
    """The first JSON object in a model's reply, tolerating ```json fences and chatter around it."""
    candidates = [m.group(1) for m in _FENCE_RE.finditer(content)] + [content]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                start = candidate.find("{", start + 1)
                continue
            if isinstance(value, dict):
                return value
            start = candidate.find("{", start + 1)
    raise AIError(f"the model's answer contains no JSON object: {content[:200]!r}")


def _retry_after_seconds(headers: Any) -> float:
    """Delay requested by a 429: ``retry-after-ms``, then ``retry-after`` (seconds or HTTP date), else 20 s."""
    if headers is None:
        return DEFAULT_RATE_LIMIT_DELAY
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    return DEFAULT_RATE_LIMIT_DELAY


def _error_text(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return error.message


def _rejects_format(error: openai.BadRequestError, response_format: str) -> bool:
    text = f"{_error_text(error)} {error.param or ''} {error.body}".lower()
    return "response_format" in text or response_format in text or "schema" in text


class OpenAIBackend:
    """Chat Completions against OpenAI or an OpenAI-compatible server."""

    name = "openai"

    def __init__(
        self, *, api_key: str, base_url: str | None, model: str, timeout: float, input_char_budget: int
    ) -> None:
        if not api_key and not base_url:
            raise ValueError("the OpenAI backend needs an API key or a base URL")
        self.model = model
        self.base_url = base_url or None
        self.timeout = timeout
        self.input_char_budget = input_char_budget
        # Local servers usually ignore the key, but the SDK insists on one.
        self.client = openai.OpenAI(
            api_key=api_key or "not-needed", base_url=self.base_url, timeout=timeout, max_retries=0
        )
        # Index into _FORMATS: once a server has rejected a format, later calls skip straight past it.
        self._format_index = 0

    @property
    def response_format(self) -> str:
        """The response format the next call starts with: json_schema, json_object or none."""
        return _FORMATS[self._format_index]

    def analyze(self, *, title: str, text: str, categories: list[CategoryInfo], existing_tags: list[str]) -> AIResult:
        if not text or not text.strip():
            raise AIError("no text to summarize")
        names = [c.name for c in categories if c.name and c.name != UNCATEGORIZED] + [UNCATEGORIZED]
        user_message = self._user_message(title=title, text=text, categories=categories, existing_tags=existing_tags)
        while True:
            fmt = _FORMATS[self._format_index]
            try:
                content, model = self._complete(fmt, user_message, names)
            except openai.BadRequestError as error:
                if fmt != "none" and _rejects_format(error, fmt):
                    self._format_index += 1
                    continue
                raise AIError(f"AI server rejected the request (400): {_error_text(error)}", permanent=True) from error
            try:
                data = parse_json_object(content)
            except AIError:
                # Non-JSON under a schema means the server ignored the schema; the plain prompt may do better.
                if fmt == "json_schema":
                    self._format_index += 1
                    continue
                raise
            return self._validate(data, names, model)

    def _user_message(self, *, title: str, text: str, categories: list[CategoryInfo], existing_tags: list[str]) -> str:
        lines = ["Categories:"]
        for category in categories:
            detail = category.description.strip()
            if category.keywords:
                detail = f"{detail} (keywords: {', '.join(category.keywords)})".strip()
            lines.append(f"- {category.name}" + (f": {detail}" if detail else ""))
        lines.append(f"- {UNCATEGORIZED}: nothing above fits")
        tags = [t for t in dict.fromkeys(t.strip().lower() for t in existing_tags) if t][:300]
        lines.append("Existing tags: " + (", ".join(tags) if tags else "(none yet)"))
        lines.append(f"Title: {title.strip()}")
        lines.append("Article:")
        lines.append(_clip_at_word(text.strip(), self.input_char_budget))
        return "\n".join(lines)

    def _complete(self, fmt: str, user_message: str, names: list[str]) -> tuple[str, str]:
        system = SYSTEM_PROMPT if fmt == "json_schema" else f"{SYSTEM_PROMPT} {FALLBACK_INSTRUCTION}"
        kwargs: dict[str, Any] = {}
        if fmt == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "article_analysis", "strict": True, "schema": _response_schema(names)},
            }
        elif fmt == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user_message}],
                temperature=0.2,
                **kwargs,
            )
        except openai.RateLimitError as error:
            delay = _retry_after_seconds(error.response.headers)
            raise AIRateLimited(f"AI server rate limit (429), retry in {delay:g} s", retry_after=delay) from error
        except openai.APITimeoutError as error:
            raise AIError(f"AI request timed out after {self.timeout:g} s ({self._where()})") from error
        except openai.APIConnectionError as error:
            reason = error.__cause__ or error
            raise AIError(f"could not connect to the AI server ({self._where()}): {reason}") from error
        except openai.BadRequestError:
            raise
        except openai.APIStatusError as error:
            permanent = error.status_code in (401, 403, 404)
            raise AIError(f"AI server error {error.status_code}: {_error_text(error)}", permanent=permanent) from error
        except openai.OpenAIError as error:
            raise AIError(f"AI request failed: {error}") from error
        if not response.choices:
            raise AIError("the AI server returned no choices")
        choice = response.choices[0]
        content = choice.message.content or ""
        if not content.strip():
            refusal = getattr(choice.message, "refusal", None)
            raise AIError(f"the model refused: {refusal}" if refusal else "the model returned an empty answer")
        return content, response.model or self.model

    def _where(self) -> str:
        return self.base_url or "api.openai.com"

    def _validate(self, data: dict[str, Any], names: list[str], model: str) -> AIResult:
        summary = data.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise AIError("the model's answer has no summary")
        by_lower = {name.lower(): name for name in names}
        category = data.get("category")
        category = by_lower.get(category.strip().lower(), UNCATEGORIZED) if isinstance(category, str) else UNCATEGORIZED
        raw_tags = data.get("tags")
        if isinstance(raw_tags, str):
            raw_tags = raw_tags.split(",")
        if not isinstance(raw_tags, list):
            raw_tags = []
        tags = list(dict.fromkeys(t.strip().lower() for t in raw_tags if isinstance(t, str) and t.strip()))[:MAX_TAGS]
        if not tags:
            raise AIError("the model's answer has no tags")
        language = data.get("language")
        language = language.strip().lower()[:16] if isinstance(language, str) else ""
        return AIResult(summary=summary.strip(), category=category, tags=tags, language=language, model=model)


def make_backend(
    *,
    backend: str,
    api_key: str = "",
    base_url: str = "",
    model: str = "",
    timeout: float = 60,
    input_char_budget: int = 12000,
) -> LocalBackend | OpenAIBackend:
    """The configured backend: ``"local"`` or ``"openai"`` (any OpenAI-compatible server)."""
    if backend == "local":
        return LocalBackend()
    if backend == "openai":
        return OpenAIBackend(
            api_key=api_key,
            base_url=base_url or None,
            model=model or "gpt-4o-mini",
            timeout=timeout,
            input_char_budget=input_char_budget,
        )
    raise ValueError(f"unknown AI backend {backend!r}; expected 'local' or 'openai'")
