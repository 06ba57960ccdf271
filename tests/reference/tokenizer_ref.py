#!/usr/bin/python3
"""Independent reference for the Go GPT-2 tokenizer (package tokenizer).

Implements OpenAI's published GPT-2 byte-level BPE algorithm (bytes_to_unicode, pair
ranking, greedy lowest-rank merging, the pre-tokenization regex) with Debian's
python3-regex, and writes golden fixtures to tokenizer/testdata/golden.json.

Special tokens: like Hugging Face's tokenizer(text), "<|endoftext|>" in the text is
emitted as its own id (50256); the pieces between occurrences are encoded normally.

Run from the repository root:  /usr/bin/python3 tests/reference/tokenizer_ref.py
"""
import json
import os
import sys

import regex

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "tokenizer", "gpt2data")
OUT = os.path.join(ROOT, "tokenizer", "testdata", "golden.json")

PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
SPECIAL = "<|endoftext|>"


def byte_alphabet():
    """Map each byte 0..255 to a printable character: printable Latin-1 bytes map to
    themselves, every other byte to the next unused code point from 256 on."""
    keep = set(range(ord("!"), ord("~") + 1))
    keep |= set(range(0xA1, 0xAC + 1))
    keep |= set(range(0xAE, 0xFF + 1))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def adjacent_pairs(symbols):
    return {(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)}


class Reference:
    def __init__(self, data_dir):
        with open(os.path.join(data_dir, "vocab.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)
        with open(os.path.join(data_dir, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines and lines[0].startswith("#version"):
            lines = lines[1:]
        self.rank = {}
        for line in lines:
            if not line.strip():
                continue
            left, right = line.split(" ")
            self.rank.setdefault((left, right), len(self.rank))
        self.alphabet = byte_alphabet()
        self.memo = {}

    def merge_word(self, word):
        if word in self.memo:
            return self.memo[word]
        symbols = list(word)
        while len(symbols) > 1:
            candidates = adjacent_pairs(symbols)
            best = min(candidates, key=lambda p: self.rank.get(p, float("inf")))
            if best not in self.rank:
                break
            merged = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == best[0] and symbols[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        self.memo[word] = symbols
        return symbols

    def encode_plain(self, text):
        ids = []
        for piece in PATTERN.findall(text):
            word = "".join(self.alphabet[b] for b in piece.encode("utf-8"))
            ids.extend(self.vocab[s] for s in self.merge_word(word))
        return ids

    def encode(self, text):
        ids = []
        parts = text.split(SPECIAL)
        for i, part in enumerate(parts):
            if i > 0:
                ids.append(self.vocab[SPECIAL])
            ids.extend(self.encode_plain(part))
        return ids


TEXTS = [
    "Hello, world!",
    "The Eiffel Tower is in the city of",
    "When Mary and John went to the store, John gave a drink to",
    "The quick brown fox jumps over the lazy dog.",
    "Paris",
    " Paris",
    "I'm you'll they'd it's we've you're can't",
    "I'M YOU'LL THEY'D IT'S",
    "'s 't 're 've 'm 'll 'd",
    "'hello' \"quoted\" rock'n'roll",
    "O'Neil's dog's bone",
    "3.14159 1,000,000",
    "12345678901234567890",
    "in 2024, about 7.5% of 300 people",
    "a    b",
    "a  b",
    "   leading spaces",
    "trailing spaces   ",
    " ",
    "   ",
    "\n",
    "\n\n",
    "line one\nline two\n\nline four",
    "\t",
    "col1\tcol2\t\tcol3",
    "mixed \t\n whitespace \n\t ",
    "  \n  indented\n    more",
    "",
    "🤗🎉",
    "Hugging Face 🤗 is great 🎉!",
    "東京タワー",
    "東京タワーは東京にあります。",
    "中文测试，你好世界",
    "한국어 텍스트",
    "café naïve résumé façade",
    "Ünïcödé Àçcéñts",
    "e\u0301 combining accent",
    "مرحبا بالعالم",
    "Привет, мир!",
    "Γειά σου Κόσμε",
    "हिन्दी पाठ",
    "def main():\n    print(\"hello\")\n    return 0\n",
    "for (int i = 0; i < n; ++i) { x[i] += y[i]; }",
    "func (t *Tokenizer) Encode(text string) []int {",
    "https://huggingface.co/openai-community/gpt2?x=1&y=2#frag",
    "user@example.com",
    "<|endoftext|>",
    "Hello<|endoftext|> world",
    "end.<|endoftext|><|endoftext|>Start again",
    "<|endoftext",
    "!!!??? ... ---",
    "$100.00 (approx.) — 50€ or £40",
    "¼ ½ ¾ ² ³ Ⅻ ①",
    "nbsp\u00a0here and\u3000ideographic space",
    "zero\u200bwidth",
    "x\u2028y\u2029z\u0085w",
    "control\x00chars\x07\x1b[0m\x7f",
    "\x1c\x1d\x1e\x1f separators",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "SolidGoldMagikarp TheNitromeFan",
    "The year is 1999.  Two spaces after the period.",
    "Ģ Ġ ĉ Ċ bytes-lookalike characters",
    "a 's b",
    "'",
    "''",
    " 'll",
]


def main():
    ref = Reference(DATA)
    entries = [{"text": t, "ids": ref.encode(t)} for t in TEXTS]
    # A long mixed text exercises the caching and long-word paths.
    long_text = " ".join(TEXTS[:40]) * 3
    entries.append({"text": long_text, "ids": ref.encode(long_text)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(entries, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %d entries to %s" % (len(entries), OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
