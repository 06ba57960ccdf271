package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Character classes of GPT-2's pattern, as Python's "regex" module defines them for str
// patterns: \p{L} letters, \p{N} numbers, \s the Unicode White_Space characters.
const (
	classOther = iota
	classLetter
	classNumber
	classSpace
)

func isSpace(r rune) bool {
	// unicode.IsSpace is exactly the White_Space property (plus nothing else).
	return unicode.IsSpace(r)
}

func classOf(r rune, size int) int {
	switch {
	case size == 1 && r == utf8.RuneError: // invalid byte: behaves like U+FFFD (So)
		return classOther
	case r < utf8.RuneSelf:
		return asciiClass[r]
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

var asciiClass = func() (c [utf8.RuneSelf]int) {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		switch {
		case unicode.IsLetter(r):
			c[r] = classLetter
		case unicode.IsNumber(r):
			c[r] = classNumber
		case unicode.IsSpace(r):
			c[r] = classSpace
		}
	}
	return c
}()

func classAt(s string, i int) (class, size int) {
	if i >= len(s) {
		return -1, 0
	}
	if b := s[i]; b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return classOf(r, n), n
}

// contraction returns the length of a GPT-2 contraction ('s 't 're 've 'm 'll 'd,
// lower case only) at the start of s, or 0.
func contraction(s string) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	switch s[1] {
	case 's', 't', 'm', 'd':
		return 2
	case 'r':
		if len(s) >= 3 && s[2] == 'e' {
			return 3
		}
	case 'v':
		if len(s) >= 3 && s[2] == 'e' {
			return 3
		}
	case 'l':
		if len(s) >= 3 && s[2] == 'l' {
			return 3
		}
	}
	return 0
}

// run returns the end of the run of characters of class c starting at i.
func run(s string, i, c int) int {
	for i < len(s) {
		ci, n := classAt(s, i)
		if ci != c {
			break
		}
		i += n
	}
	return i
}

// nextPiece returns the byte length of the first piece GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// matches at the start of the non-empty string s. The alternatives are tried in order, as
// the regex engine does.
func nextPiece(s string) int {
	if n := contraction(s); n > 0 {
		return n
	}
	c, n := classAt(s, 0)
	start := 0
	if s[0] == ' ' { // the optional leading space of alternatives 2-4
		if c2, _ := classAt(s, 1); c2 == classLetter || c2 == classNumber || c2 == classOther {
			c, start = c2, 1
		}
	}
	if c != classSpace {
		// ` ?\p{L}+`, ` ?\p{N}+` or ` ?[^\s\p{L}\p{N}]+`: a maximal run of one class.
		return run(s, start, c)
	}
	// A whitespace run. `\s+(?!\S)` takes the whole run when it ends the text, else all
	// but its last character, so that the last space can start the next piece; a single
	// whitespace character before non-whitespace falls through to `\s+`.
	end := run(s, n, classSpace)
	if end == len(s) {
		return end
	}
	_, last := utf8.DecodeLastRuneInString(s[:end])
	if end-last > 0 {
		return end - last
	}
	return end
}
