package gull

import (
	"errors"
	"strings"
)

// Word-splitting errors; both mean the caller's command is malformed.
var (
	ErrUnbalancedQuote = errors.New("unbalanced quote")
	ErrTrailingEscape  = errors.New("trailing backslash escapes nothing")
)

// SplitWords splits s into words the way a POSIX shell's tokenizer does for
// quoting: blanks separate words, '...' is literal, "..." is literal except
// that a backslash escapes $ ` " \ and newline, and an unquoted backslash
// escapes the next character (backslash-newline joins lines). Nothing is
// expanded and nothing is a comment or an operator: "#id" and "a&&b" are
// plain words, since CSS selectors and JavaScript are the normal content of
// browser commands and no shell ever sees them. A quoted empty string (""
// or a pair of single quotes) is kept as an empty word.
func SplitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool // cur holds a word, possibly empty ("")
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '\\':
			if i+1 >= len(rs) {
				return nil, ErrTrailingEscape
			}
			i++
			if rs[i] == '\n' {
				continue // line continuation
			}
			cur.WriteRune(rs[i])
			inWord = true
		case r == '\'':
			end := indexRune(rs, i+1, '\'')
			if end < 0 {
				return nil, ErrUnbalancedQuote
			}
			cur.WriteString(string(rs[i+1 : end]))
			i = end
			inWord = true
		case r == '"':
			i++
			closed := false
			for ; i < len(rs); i++ {
				c := rs[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(rs) {
					switch rs[i+1] {
					case '$', '`', '"', '\\':
						i++
						cur.WriteRune(rs[i])
						continue
					case '\n':
						i++
						continue
					}
				}
				cur.WriteRune(c)
			}
			if !closed {
				return nil, ErrUnbalancedQuote
			}
			inWord = true
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func indexRune(rs []rune, from int, r rune) int {
	for i := from; i < len(rs); i++ {
		if rs[i] == r {
			return i
		}
	}
	return -1
}
