package iptables

import (
	"fmt"
	"strings"
)

// splitWords splits an iptables-restore line into words the way
// iptables-restore does: on blanks, with double quotes grouping a word.
func splitWords(line string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words = append(words, word.String())
				word.Reset()
			}
			inWord = false
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// joinWords writes words back as one line, quoting those with blanks.
func joinWords(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		if w == "" || strings.ContainsAny(w, " \t") {
			w = `"` + w + `"`
		}
		quoted[i] = w
	}
	return strings.Join(quoted, " ")
}

// jumpTarget returns the chain or target a rule's words jump (-j) or go
// (-g) to, or "" when the rule has none.
func jumpTarget(words []string) string {
	for i := 0; i+1 < len(words); i++ {
		switch words[i] {
		case "-j", "--jump", "-g", "--goto":
			return words[i+1]
		}
	}
	return ""
}

// builtinChains lists a table's built-in chains in iptables-save order.
func builtinChains(table string) []string {
	switch table {
	case TableFilter:
		return []string{"INPUT", "FORWARD", "OUTPUT"}
	case TableNAT:
		return []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}
	}
	return nil
}

// isTarget reports whether name is a standard or extension target rather
// than a chain (the extensions a proxier uses, not all of them).
func isTarget(name string) bool {
	switch name {
	case "ACCEPT", "DROP", "RETURN", "QUEUE", "REJECT", "MARK", "CONNMARK", "MASQUERADE",
		"SNAT", "DNAT", "REDIRECT", "LOG", "NOTRACK", "CT", "NFLOG":
		return true
	}
	return false
}
