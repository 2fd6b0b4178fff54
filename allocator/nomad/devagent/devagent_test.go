package devagent

import (
	"slices"
	"testing"
)

func TestSplitRuleKeepsQuotedComments(t *testing.T) {
	line := `-A POSTROUTING -s 172.26.64.2/32 -m comment --comment "name: \"nomad\" id: \"9c64\"" -j CNI-9a31`
	got, err := splitRule(line)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-A", "POSTROUTING", "-s", "172.26.64.2/32", "-m", "comment", "--comment", `name: "nomad" id: "9c64"`, "-j", "CNI-9a31"}
	if !slices.Equal(got, want) {
		t.Fatalf("splitRule = %q\nwant        %q", got, want)
	}
	if _, err := splitRule(`-A X --comment "open`); err == nil {
		t.Fatal("unbalanced quote accepted")
	}
}
